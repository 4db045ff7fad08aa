"""Finding images for inference: files, folders and lists, with identities where they are known.

An identity (pid) is read, in this order, from a CSV list's ``pid`` column, from a Market-1501
file name (``PPPP_cC...``, which also gives the camera), or from the folder an image sits in when
a folder was given (one sub-folder per identity). Pids are strings; digits lose leading zeros, so
``0050_c1s1_000000_00.jpg`` and ``gallery/50/x.jpg`` are the same identity.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass

from promptsg.datasets.folder import IMG_EXTENSIONS, IMG_EXTENSIONS_HINT
from promptsg.datasets.market1501 import NAME_PATTERN
from promptsg.errors import DataError

#: Files read as lists of images rather than as images.
LIST_EXTENSIONS = ('.txt', '.csv')


@dataclass(frozen=True)
class ImageRecord:
    """One image file: its path, identity (``None`` when unknown) and camera (-1 when unknown)."""

    path: str
    pid: str | None = None
    camid: int = -1


def is_image_file(path: str | os.PathLike) -> bool:
    """Whether the file name has an image extension (``IMG_EXTENSIONS``)."""
    return str(path).lower().endswith(IMG_EXTENSIONS)


def normalise_pid(pid: object) -> str | None:
    """``'0050'`` → ``'50'``; other names unchanged; empty → ``None``."""
    text = str(pid).strip() if pid is not None else ''
    if not text:
        return None
    return str(int(text)) if text.lstrip('-').isdigit() else text


def identity_from_name(path: str, root: str | None = None) -> tuple[str | None, int]:
    """(pid, camid) from a Market-1501 name, else from the identity folder under ``root``."""
    match = NAME_PATTERN.match(os.path.basename(path))
    if match is not None:
        return normalise_pid(match.group(1)), int(match.group(2)) - 1
    if root is not None:
        rel = os.path.relpath(path, root)
        parent = os.path.dirname(rel)
        if parent and not parent.startswith('..'):
            return normalise_pid(os.path.basename(parent)), -1
    return None, -1


def _folder_images(folder: str) -> list[str]:
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith('.'))
        found += [
            os.path.join(dirpath, f)
            for f in sorted(filenames)
            if not f.startswith('.') and is_image_file(f)
        ]
    if not found:
        raise DataError(f'no images ({IMG_EXTENSIONS_HINT}) under folder {folder}')
    return found


def read_image_list(path: str) -> list[ImageRecord]:
    """Images listed in ``path``: a ``.txt`` (one path per line, ``#`` comments) or a ``.csv``
    with a ``path`` column and optional ``pid``/``camid``; relative paths are taken from the
    list's folder."""
    base = os.path.dirname(os.path.abspath(path))
    rows: list[tuple[str, dict]] = []
    with open(path, newline='', encoding='utf-8-sig') as f:
        if path.lower().endswith('.csv'):
            reader = csv.DictReader(f)
            columns = [c.strip() for c in reader.fieldnames or []]
            if 'path' not in columns:
                raise DataError(f'{path} lacks a path column (columns: {", ".join(columns)})')
            reader.fieldnames = columns
            rows = [(r['path'].strip(), r) for r in reader if (r.get('path') or '').strip()]
        else:
            rows = [(ln.strip(), {}) for ln in f if ln.strip() and not ln.lstrip().startswith('#')]
    if not rows:
        raise DataError(f'image list {path} is empty')
    records = []
    for line, (name, row) in enumerate(rows, start=1):
        img = name if os.path.isabs(name) else os.path.join(base, name)
        if not os.path.isfile(img):
            raise DataError(f'{path}: listed image not found: {img}')
        pid, camid = identity_from_name(img)
        if row.get('pid', '').strip():
            pid = normalise_pid(row['pid'])
        if row.get('camid', '').strip():
            try:
                camid = int(row['camid'])
            except ValueError:
                raise DataError(
                    f'{path} row {line}: camid {row["camid"]!r} is not an integer'
                ) from None
        records.append(ImageRecord(img, pid, camid))
    return records


def collect_images(inputs: str | os.PathLike | list | tuple) -> list[ImageRecord]:
    """Image records from image files, folders (searched recursively, sorted) and image lists.

    Raises:
        DataError: a path does not exist, a file is neither an image nor a list, or a folder or
            list holds no images.
    """
    items = [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)
    if not items:
        raise DataError('no images given')
    records: list[ImageRecord] = []
    for item in items:
        path = os.fspath(item)
        if os.path.isdir(path):
            records += [ImageRecord(p, *identity_from_name(p, path)) for p in _folder_images(path)]
        elif not os.path.exists(path):
            raise DataError(f'image, folder or list not found: {path}')
        elif path.lower().endswith(LIST_EXTENSIONS):
            records += read_image_list(path)
        elif is_image_file(path):
            records.append(ImageRecord(path, *identity_from_name(path)))
        else:
            raise DataError(
                f'not an image file: {path} (images: {IMG_EXTENSIONS_HINT}; '
                f'lists: {", ".join(LIST_EXTENSIONS)})'
            )
    return records
