"""The service's routers, one module per area (the API issue adds more)."""
