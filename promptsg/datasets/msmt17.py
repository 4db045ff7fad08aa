"""MSMT17 (Wei et al., 2018) in its native layout: image folders plus four list files."""

from __future__ import annotations

import os

from promptsg.datasets.base import ReIDDataset
from promptsg.datasets.holdout import check_holdout_split, check_val_holdout, split_train_val
from promptsg.datasets.market1501 import SPLITS
from promptsg.errors import ConfigError, DataError
from promptsg.registry import DATASETS

#: (training folder, test folder) of each release; V2 blurs the faces, names are the same.
VERSIONS = {'V1': ('train', 'test'), 'V2': ('mask_train_v2', 'mask_test_v2')}
LISTS = {
    'train': 'list_train.txt',
    'val': 'list_val.txt',
    'query': 'list_query.txt',
    'gallery': 'list_gallery.txt',
}


@DATASETS.register_module()
class MSMT17(ReIDDataset):
    """MSMT17 as published: ``train/`` + ``test/`` (V1) or ``mask_train_v2/`` +
    ``mask_test_v2/`` (V2), and ``list_train.txt``, ``list_val.txt``, ``list_query.txt``,
    ``list_gallery.txt`` beside them.

    Each list line is ``<path relative to the image folder> <pid>``, e.g.
    ``0000/0000_000_01_0303morning_0015_0.jpg 0``; the camera is the third ``_`` field of the
    name (1-based, 15 cameras), made 0-based. The train and val lists name images of the
    training folder and the query and gallery lists images of the test folder. The val list
    holds other images of the same 1,041 training ids (the lists are disjoint in images, not in
    ids: 30,248 + 2,373 = the 32,621 training images of the paper).

    - ``train``: ``list_train.txt``, plus ``list_val.txt`` when ``train_with_val`` (the papers'
      practice), minus what ``val_holdout`` holds out; relabelled.
    - ``val``: with ``val_holdout=dict(mode='ids' | 'images', ...)`` carved from the training
      images above (see :mod:`promptsg.datasets.holdout`); with ``dict(mode='list')`` the
      ``list_val.txt`` images are the queries and the ``list_train.txt`` images the gallery
      (then ``train_with_val=False`` so that training never sees a val query).
    - ``query`` / ``gallery`` / ``test`` (query then gallery): the test lists, raw pids (the
      test ids are numbered from 0 again: test pid 0 is not training pid 0).

    Args:
        data_root: the ``MSMT17_V1`` or ``MSMT17_V2`` folder.
        split: ``'train'``, ``'val'``, ``'query'``, ``'gallery'`` or ``'test'``.
        version: ``'auto'`` (from the folders present), ``'V1'`` or ``'V2'``.
        train_with_val: train on ``list_train.txt`` + ``list_val.txt``.
        val_holdout: ``None`` | ``dict(mode='ids', size=0.1, seed=0)`` |
            ``dict(mode='images', seed=0)`` | ``dict(mode='list')``; give train and val the
            same dict.
    """

    splits = SPLITS
    holdout_modes = ('ids', 'images', 'list')

    def __init__(
        self,
        data_root: str,
        split: str = 'train',
        version: str = 'auto',
        train_with_val: bool = True,
        val_holdout: dict | None = None,
        **kwargs,
    ) -> None:
        if version not in ('auto', *VERSIONS):
            raise ConfigError(f'MSMT17 version={version!r} is invalid; choose from auto, V1, V2')
        self.val_holdout = check_val_holdout(val_holdout, 'MSMT17', self.holdout_modes)
        check_holdout_split('MSMT17', split, self.val_holdout, self.holdout_modes, accepts=SPLITS)
        if train_with_val and (self.val_holdout or {}).get('mode') == 'list':
            raise ConfigError(
                "MSMT17 val_holdout=dict(mode='list') validates on list_val.txt: set "
                'train_with_val=False (in the train and val configs) so training does not use it'
            )
        self.version = version
        self.train_with_val = train_with_val
        super().__init__(data_root=data_root, split=split, **kwargs)

    def load_samples(self) -> list[dict]:
        train_dir, test_dir = self._folders()
        if self.split in ('query', 'gallery', 'test'):
            parts = ('query', 'gallery') if self.split == 'test' else (self.split,)
            return [s for part in parts for s in self._read_list(part, test_dir)]
        train = self._read_list('train', train_dir)
        mode = (self.val_holdout or {}).get('mode')
        if mode == 'list':
            if self.split == 'train':
                return train
            query = [dict(s, is_query=True) for s in self._read_list('val', train_dir)]
            return query + train
        if self.train_with_val:
            train += self._read_list('val', train_dir)
        if mode is None:
            return train
        return split_train_val(train, self.val_holdout, self.split, 'MSMT17')

    def _folders(self) -> tuple[str, str]:
        """(training folder, test folder) of the requested or detected version."""

        def present(v: str) -> bool:
            return all(os.path.isdir(os.path.join(self.data_root, d)) for d in VERSIONS[v])

        found = [v for v in VERSIONS if present(v)]
        want = self.version
        if want == 'auto':
            if len(found) == 1:
                want = found[0]
            elif found:
                raise DataError(
                    f'MSMT17 {self.data_root} holds both V1 and V2 folders; set version'
                )
        if want not in found:
            layouts = ' or '.join(
                f'{a}/ + {b}/ ({v})' for v, (a, b) in VERSIONS.items() if want in ('auto', v)
            )
            raise DataError(f'MSMT17 folders missing: need {layouts} under {self.data_root}')
        return tuple(os.path.join(self.data_root, d) for d in VERSIONS[want])

    def _read_list(self, part: str, image_dir: str) -> list[dict]:
        """Samples of ``list_<part>.txt``: image path, pid, 0-based camera, query flag."""
        path = os.path.join(self.data_root, LISTS[part])
        if not os.path.isfile(path):
            raise DataError(f'MSMT17 list file missing: {path}')
        samples = []
        with open(path, encoding='utf-8') as f:
            for line_no, line in enumerate(f, start=1):
                fields = line.split()
                if not fields:
                    continue
                if len(fields) != 2 or not fields[1].lstrip('-').isdigit():
                    raise DataError(
                        f'{path} line {line_no}: expected "<relative path> <pid>", '
                        f'got {line.strip()!r}'
                    )
                rel, pid = fields[0], int(fields[1])
                cam = os.path.basename(rel).split('_')
                if len(cam) < 3 or not cam[2].isdigit() or int(cam[2]) < 1:
                    raise DataError(
                        f'{path} line {line_no}: the third "_" field of {rel!r} is not a '
                        'camera number (1-based), as in 0000_000_01_0303morning_0015_0.jpg'
                    )
                img_path = os.path.join(image_dir, rel)
                if not self.skip_missing and not os.path.isfile(img_path):
                    raise DataError(f'{path} line {line_no} names a missing image: {img_path}')
                samples.append(
                    dict(
                        img_path=img_path, pid=pid, camid=int(cam[2]) - 1, is_query=part == 'query'
                    )
                )
        return samples
