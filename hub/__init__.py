"""JupyterHub configuration: authenticator, spawner, services and groups."""
