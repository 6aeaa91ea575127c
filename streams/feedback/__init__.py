"""The feedback stream processor (faust-streaming): labels joined to served decisions.

``fraud.labels`` + ``transactions.scored`` -> one (served decision, label) pair per label,
handed to a sink (the service writes training rows and terminal-risk updates). See
:mod:`streams.feedback.app` for the topology and :mod:`streams.feedback.join` for the join.
"""
