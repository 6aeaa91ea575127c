"""REST API for clients that cannot speak Kafka: the same scoring pipeline over HTTP."""
