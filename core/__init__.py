"""Code shared by every AlertLab component: settings, errors, the database
engines and schema migrations, the private services and the CLI."""
