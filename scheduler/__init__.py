"""The scheduler service: papermill runs on cron or when alerts match."""
