"""Dashboards: gallery notebooks rendered by Voilà for the viewers allowed to see them.

- ``server``: the Voilà server as a hub service, run as an unprivileged account;
- ``voila_app``: Voilà locked down (viewer per kernel, a limit per dashboard, culling, a warm pool);
- ``kernel``: a dashboard kernel, holding its viewer's token;
- ``proxy``: /services/alertlab/dashboards/<slug>, the only way in, after the authorization check;
- ``tokens``: the viewer's short-lived hub token a dashboard kernel uses;
- ``files``: the published notebook copied where Voilà reads it;
- ``paths``: the account, the folder, the port and the secret."""
