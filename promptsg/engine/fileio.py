"""Atomic checkpoint writes: a file is either the old one or the complete new one, never half.

``CheckpointHook`` writes through a file backend chosen by ``backend_args``; with
``backend_args=dict(backend='atomic_local')`` (set in ``configs/_base_/default_runtime.py``) it
uses :class:`AtomicLocalBackend`, which writes a temporary file beside the target, flushes it to
disk and renames it over the target (``os.replace`` is atomic on POSIX and Windows). A process
killed while saving leaves the previous checkpoint intact.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from mmengine.fileio import LocalBackend, register_backend

#: Name of the backend in mmengine's file-backend registry.
ATOMIC_BACKEND = 'atomic_local'


@contextmanager
def atomic_open(path: str | Path) -> Iterator[BinaryIO]:
    """A binary file to write that replaces ``path`` only once it is complete: a temporary file in
    the same folder, flushed and fsynced, then ``os.replace``; an error leaves ``path`` as it was."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f'.{os.path.basename(path)}.', suffix='.tmp', dir=folder)
    try:
        with os.fdopen(fd, 'wb') as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def atomic_write(data: bytes, path: str | Path) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_open`)."""
    with atomic_open(path) as f:
        f.write(data)


@register_backend(ATOMIC_BACKEND, force=True)
class AtomicLocalBackend(LocalBackend):
    """mmengine's local backend whose ``put``/``put_text`` replace the target atomically."""

    def put(self, obj: bytes, filepath: str | Path) -> None:
        atomic_write(obj, filepath)

    def put_text(self, obj: str, filepath: str | Path, encoding: str = 'utf-8') -> None:
        atomic_write(obj.encode(encoding), filepath)


#: Names :func:`atomic_write` gives its temporary files: ``.<target name>.<random>.tmp``.
_TEMPORARY = re.compile(r'\..+\.[A-Za-z0-9_]+\.tmp')


def remove_stale_temporaries(folder: str | Path) -> list[str]:
    """Delete the temporary files that an :func:`atomic_write` killed mid-write left in
    ``folder`` (call only while no other process writes there); return their paths."""
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        return []
    stale = [os.path.join(folder, f) for f in sorted(os.listdir(folder)) if _TEMPORARY.fullmatch(f)]
    for path in stale:
        os.remove(path)
    return stale
