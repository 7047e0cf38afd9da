"""The shared notebook gallery: publishing (each publish a new version), the
cached HTML render and thumbnail, search, tags and stars, copies into a
viewer's home. Who sees what is ``alertlab.api.access`` (kind ``notebook``).

- ``notebooks``: what is derived from a notebook file (pure functions);
- ``store``: the entries in the application database;
- ``visibility``: "private", "public", "group:NAME", ... as shares;
- ``copying``: "Open a copy in my server";
- ``pages``: the server-rendered HTML pages (Jinja2, autoescaped)."""
