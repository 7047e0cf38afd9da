"""The private MariaDB and Kafka that AlertLab starts itself (no systemd, no
Docker): one module per service, and ``process`` for what they share."""
