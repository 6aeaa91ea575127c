"""``python -m services.feedback``: the feedback processor (same as ``fraudctl serve feedback``)."""

from services.feedback.service import main

main()
