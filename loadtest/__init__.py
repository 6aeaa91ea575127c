"""Locust load tests against the latency SLA (``locust -f loadtest/locustfile.py``).

* :mod:`loadtest.tracker` - matches decisions to sends by transaction_id (pure, no I/O);
* :mod:`loadtest.feed` - simulator transactions with unique ids per run;
* :mod:`loadtest.kafka_user` - the Kafka user and the one shared decision reader per process;
* :mod:`loadtest.http_user` - the REST user (``POST /v1/score``);
* :mod:`loadtest.shapes` - constant, step (find the knee) and spike load profiles;
* :mod:`loadtest.sla` - thresholds, the verdict and the per-percentile table;
* :mod:`loadtest.options` - the command-line / ``FRAUD_*`` options Locust parses.

Nothing under ``services/`` imports this package (``fraudctl loadtest`` runs Locust as a
subprocess).
"""
