"""Terminal-risk profiles: one offline definition, a Feast repo, a fast reader, one writer.

Import from ``features.profiles.<module>``: this package re-exports nothing, so importing
the direct reader (the scorer's hot path) loads neither Feast nor pandas.
"""
