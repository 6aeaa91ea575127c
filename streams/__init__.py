"""Kafka plumbing: topic specs, versioned event schemas, serde, client config, DLQ, simulator."""
