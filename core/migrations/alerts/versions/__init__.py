"""Migration scripts, applied in order by `alertlab db init`."""
