"""Models: training, evaluation, ONNX export with parity, registry, policy, explanations.

This package never imports Kafka: lifecycle events are handed to an optional ``publish``
callback that the services layer wires to the broker.
"""
