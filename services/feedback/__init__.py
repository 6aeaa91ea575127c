"""``fraudctl serve feedback``: the faust feedback processor wired to its sinks."""
