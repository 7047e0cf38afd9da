"""`python -m alertlab.dashboards`: start the dashboards' Voilà server (see alertlab.dashboards.server)."""

from alertlab.dashboards.server import main

main()
