"""Open the model registry where the settings put it: a local folder or ``s3://``.

Both kinds have the same methods; callers type them as :data:`Registry`.
"""

from __future__ import annotations

from pathlib import Path

from models.registry import ModelRegistry
from models.registry_objects import ObjectModelRegistry
from streams.object_store import ObjectStore, is_object_url

Registry = ModelRegistry | ObjectModelRegistry


def open_registry(
    location: str | Path, *, endpoint_url: str | None = None, cache_dir: Path | None = None
) -> Registry:
    """``s3://bucket/prefix`` opens the object-store registry (its versions cached under
    ``cache_dir``, by default ``state/registry-cache``); anything else is a folder."""
    if is_object_url(location):
        store = ObjectStore(str(location), endpoint_url=endpoint_url)
        return ObjectModelRegistry(store, cache_dir or Path("state") / "registry-cache")
    return ModelRegistry(Path(location))
