"""The review consumer's Prometheus metrics (``FRAUD_METRICS_PORT`` serves them; 0 = off).

* ``fraud_labels_total{source}`` - labels written to ``fraud.labels`` and acknowledged by
  the broker, by source (analyst | oracle | chargeback).
* ``fraud_review_cases_closed_total{verdict}`` - review cases taken off the queue, by
  verdict (fraud | legit | skip | dead_letter). With the scorer's ``fraud_review_cases_total``
  the review queue depth is ``sum(fraud_review_cases_total) -
  sum(fraud_review_cases_closed_total)``.
"""

from __future__ import annotations

from prometheus_client import Counter

LABELS = Counter("fraud_labels_total", "Labels acknowledged on fraud.labels, by source", ["source"])
CASES_CLOSED = Counter(
    "fraud_review_cases_closed_total", "Review cases taken off the queue, by verdict", ["verdict"]
)
