"""The `alertlab` web service (FastAPI behind the hub): the alert data API."""
