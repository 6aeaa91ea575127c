"""The analysts' case store: review cases in a database, claimed, resolved and labelled."""
