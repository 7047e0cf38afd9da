"""ipywidgets for exploring alerts in notebooks and dashboards."""
