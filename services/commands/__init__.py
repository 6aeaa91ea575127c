"""``fraudctl`` sub-commands, one module per area; :mod:`services.cli` mounts them."""
