"""Runnable processes wiring streams, features and models: scorer, API, review, feedback,
retrainer, the embedded stack, and the ``fraudctl`` CLI."""
