"""Local files that survive a crash or a power loss: fsync, atomic rename, directory fsync.

A rename is only durable once the directory holding it is fsynced, and the renamed file's
bytes only once the file was fsynced before the rename; without both, a power loss can
leave an empty or torn file under the final name. The model registry, the training store
and the retrainer's event outbox write through these helpers.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path


def fsync_dir(folder: Path) -> None:
    """Make the entries of ``folder`` (creations, renames, removals) durable."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``path`` as a whole or not at all: temp file, fsync, rename, fsync the folder."""
    temp = path.parent / f".{path.name}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        with temp.open("wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)
    fsync_dir(path.parent)


def fsync_file(path: Path) -> None:
    with path.open("rb") as handle:
        os.fsync(handle.fileno())


def rename_durable(source: Path, target: Path) -> None:
    """``os.replace`` and fsync both folders (the target's last, so the move is kept)."""
    os.replace(source, target)
    if source.parent != target.parent:
        fsync_dir(source.parent)
    fsync_dir(target.parent)


def append_durable(path: Path, text: str) -> None:
    """Append ``text`` and fsync; a new file's directory entry is fsynced too.

    A crash can still leave a torn last line (the append is not atomic): readers of these
    logs skip a line that does not parse, and the next append starts on a new line so the
    torn one never swallows it.
    """
    created = not path.exists()
    if not created and not _ends_with_newline(path):
        text = "\n" + text
    with path.open("a", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    if created:
        fsync_dir(path.parent)


def _ends_with_newline(path: Path) -> bool:
    with path.open("rb") as handle:
        handle.seek(0, os.SEEK_END)
        if handle.tell() == 0:
            return True
        handle.seek(-1, os.SEEK_END)
        return handle.read(1) == b"\n"
