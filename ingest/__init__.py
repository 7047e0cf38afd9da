"""Ingest: alerts from Kafka or Avro files into the alert database, with features, watchlists, areas, filters and match events."""
