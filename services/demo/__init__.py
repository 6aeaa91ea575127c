"""``fraudctl demo``: the whole system on the embedded stack with a live terminal dashboard.

``plan`` (what runs, with which settings and timing) -> ``setup`` (history, champion,
profiles, live traffic) -> ``children`` (the services as subprocesses) -> ``watch`` (the
topics) + ``scrape`` (the services' /metrics) -> ``dashboard`` -> ``summary``;
``runner`` wires them in that order.
"""
