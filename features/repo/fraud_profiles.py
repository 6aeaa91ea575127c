"""Feast definitions of the fraud profiles, read by ``feast apply`` in this folder.

The objects come from :func:`features.profiles.feast_repo.repo_objects`, the same function the
Python SDK path uses, so the CLI and ``fraudctl features materialize`` register identical views.
"""

from features.profiles.feast_repo import repo_objects

terminal, customer, terminal_risk_source, terminal_risk = repo_objects()
