"""The embedded stack: a Kafka-protocol broker (noida-db) and Redis, started when missing."""
