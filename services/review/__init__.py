"""``fraudctl review``: analysts (or the demo oracle, or a chargeback file) label cases.

The testable core is :class:`services.review.session.ReviewSession`; the terminal UI
(:mod:`services.review.tui`) and the non-interactive modes are thin loops over it.
"""
