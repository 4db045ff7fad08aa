"""Generic data sets: one folder per identity, or a CSV list of images."""

from __future__ import annotations

import os
import re

from PIL import Image

from promptsg.datasets.base import ReIDDataset
from promptsg.datasets.csv_rows import read_csv_rows
from promptsg.datasets.holdout import HoldoutMixin
from promptsg.errors import ConfigError, DataError
from promptsg.registry import DATASETS


def _decodable_extensions() -> tuple[str, ...]:
    """File extensions of every format this PIL build can open (``.jpg``, ``.png``, ``.pgm``, ...)."""
    Image.init()
    return tuple(
        sorted(ext for ext, fmt in Image.registered_extensions().items() if fmt in Image.OPEN)
    )


#: Image file extensions: those PIL registers for a format it decodes.
IMG_EXTENSIONS = _decodable_extensions()
#: How messages name them (the full list is long).
IMG_EXTENSIONS_HINT = '.jpg, .png, .bmp, .tif, .webp, .pgm, .ppm or another format PIL decodes'
TRUE_WORDS = ('1', 'true', 'yes', 'query', 'q')
FALSE_WORDS = ('0', 'false', 'no', 'gallery', 'g')


@DATASETS.register_module()
class FolderDataset(HoldoutMixin, ReIDDataset):
    """Images in ``<data_root>/<pid_name>/*.jpg``: each sub-folder is one identity.

    Folder names map to pids ``0..n-1`` in sorted order (numeric names numerically). With
    ``query_dir`` and ``gallery_dir`` (sub-folders of ``data_root``, each laid out the same way)
    the set is an evaluation set: both are read, ``is_query`` marks the query images, and one
    name maps to one pid in both. Give train and test as separate data sets. A training folder
    can also give a validation set: ``split='train'`` / ``'val'`` with the same ``val_holdout``
    (see :mod:`promptsg.datasets.holdout`; cameras from ``camid_pattern`` or unknown).

    Args:
        data_root: the folder of identity folders (or of ``query_dir``/``gallery_dir``).
        query_dir, gallery_dir: evaluation set: sub-folders holding query and gallery.
        camid_pattern: regex with one group, searched in each file name, giving the camera id
            (e.g. ``r'_c(\\d+)'``); ``None`` sets ``camid=-1``.
        aspect: words for the prompt's ``{aspect}`` slot, put in every sample.
        val_holdout: ``None`` | ``dict(mode='ids', size=0.1, seed=0)`` |
            ``dict(mode='images', seed=0)``, with ``split='train'`` or ``'val'``.
    """

    def __init__(
        self,
        data_root: str,
        query_dir: str | None = None,
        gallery_dir: str | None = None,
        camid_pattern: str | None = None,
        aspect: str | None = None,
        test_mode: bool | None = None,
        val_holdout: dict | None = None,
        **kwargs,
    ) -> None:
        if (query_dir is None) != (gallery_dir is None):
            raise ConfigError('query_dir and gallery_dir must be given together (or neither)')
        self._init_holdout(val_holdout, kwargs.get('split'), evaluation=query_dir is not None)
        self.query_dir = query_dir
        self.gallery_dir = gallery_dir
        self.camid_regex = _compile_camid_pattern(camid_pattern)
        self.aspect = aspect
        super().__init__(
            data_root=data_root,
            test_mode=True if query_dir is not None and test_mode is None else test_mode,
            **kwargs,
        )

    def load_samples(self) -> list[dict]:
        root = self.data_prefix['img_path']
        if self.query_dir is None:
            parts = [(None, root)]  # (is_query, folder); None: not an evaluation set
        else:
            parts = [(True, os.path.join(root, self.query_dir))]
            parts.append((False, os.path.join(root, self.gallery_dir)))
        folders = [(flag, self._identity_folders(path)) for flag, path in parts]
        names = sorted({n for _, found in folders for n in found}, key=_name_order)
        name2pid = {name: pid for pid, name in enumerate(names)}
        samples = []
        for flag, found in folders:
            for name, files in found.items():
                for path in files:
                    sample = dict(img_path=path, pid=name2pid[name], camid=self._camid(path))
                    if flag is not None:
                        sample['is_query'] = flag
                    if self.aspect:
                        sample['aspect'] = self.aspect
                    samples.append(sample)
        return self._apply_holdout(samples)

    def _identity_folders(self, path: str) -> dict[str, list[str]]:
        """Sorted image paths of each identity folder under ``path``."""
        if not os.path.isdir(path):
            raise DataError(f'image folder not found: {path}')
        found = {}
        for name in sorted(os.listdir(path)):
            folder = os.path.join(path, name)
            if name.startswith('.') or not os.path.isdir(folder):
                continue
            files = sorted(
                os.path.join(folder, f)
                for f in os.listdir(folder)
                if f.lower().endswith(IMG_EXTENSIONS) and os.path.isfile(os.path.join(folder, f))
            )
            if not files:
                raise DataError(f'identity folder {folder!r} has no images ({IMG_EXTENSIONS_HINT})')
            found[name] = files
        if not found:
            raise DataError(f'no identity folders (one folder per identity) under {path}')
        return found

    def _camid(self, path: str) -> int:
        if self.camid_regex is None:
            return -1
        name = os.path.basename(path)
        match = self.camid_regex.search(name)
        if match is None or not match.group(1).isdigit():
            raise DataError(
                f'camid_pattern {self.camid_regex.pattern!r} finds no camera number in {path!r}'
            )
        return int(match.group(1))


@DATASETS.register_module()
class CSVDataset(HoldoutMixin, ReIDDataset):
    """Images listed in a CSV with columns ``path,pid[,camid][,is_query][,aspect]``.

    ``path`` is relative to ``data_root`` (or absolute); ``ann_file`` is relative to
    ``data_root`` unless absolute (mmengine's rule). Other columns are ignored. ``is_query``
    accepts 1/0, true/false, yes/no, query/gallery (set ``test_mode=True`` for evaluation).
    A list without ``is_query`` can also give a validation set: ``split='train'`` / ``'val'``
    with the same ``val_holdout`` (see :mod:`promptsg.datasets.holdout`).
    """

    REQUIRED = ('path', 'pid')

    def __init__(
        self, data_root: str, ann_file: str, val_holdout: dict | None = None, **kwargs
    ) -> None:
        if not ann_file:
            raise ConfigError('CSVDataset needs ann_file (a CSV with columns path,pid)')
        self._init_holdout(val_holdout, kwargs.get('split'), evaluation=False)
        super().__init__(data_root=data_root, ann_file=ann_file, **kwargs)

    def load_samples(self) -> list[dict]:
        path = self.ann_file
        root = self.data_prefix['img_path']
        samples = []
        for line, row in read_csv_rows(path, self.REQUIRED):
            if not row['path']:
                raise DataError(f'{path} line {line}: empty path')
            sample = dict(
                img_path=os.path.join(root, row['path']),
                pid=_parse_int(row['pid'], 'pid', path, line),
                camid=_parse_int(row.get('camid') or '-1', 'camid', path, line),
                row=f'{os.path.basename(path)} line {line}',
            )
            if 'is_query' in row:
                sample['is_query'] = _parse_bool(row['is_query'], path, line)
            if row.get('aspect'):
                sample['aspect'] = row['aspect']
            samples.append(sample)
        return self._apply_holdout(samples)


def _compile_camid_pattern(pattern: str | None) -> re.Pattern | None:
    if pattern is None:
        return None
    try:
        regex = re.compile(pattern)
    except re.error as e:
        raise ConfigError(f'camid_pattern {pattern!r} is not a valid regex: {e}') from None
    if regex.groups != 1:
        raise ConfigError(
            f'camid_pattern {pattern!r} must have exactly one group, e.g. r"_c(\\d+)"'
        )
    return regex


def _name_order(name: str) -> tuple:
    return (0, int(name), name) if name.isdigit() else (1, 0, name)


def _parse_int(value: str, key: str, path: str, line: int) -> int:
    try:
        return int(value)
    except ValueError:
        raise DataError(f'{path} line {line}: {key} {value!r} is not an integer') from None


def _parse_bool(value: str, path: str, line: int) -> bool:
    word = value.lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    choices = ', '.join(TRUE_WORDS + FALSE_WORDS)
    raise DataError(f'{path} line {line}: is_query {value!r} is not one of {choices}')
