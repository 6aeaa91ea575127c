"""The scorer: a Kafka consumer-group service deciding every transaction (see service.py)."""
