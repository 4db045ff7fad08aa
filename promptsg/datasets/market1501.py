"""Market-1501 layout: ``bounding_box_train/``, ``query/``, ``bounding_box_test/``."""

from __future__ import annotations

import os
import re

from promptsg.datasets.base import ReIDDataset
from promptsg.datasets.holdout import check_holdout_split, check_val_holdout, split_train_val
from promptsg.errors import DataError
from promptsg.registry import DATASETS

#: ``PPPP_cCsS_FFFFFF_NN.jpg``: pid (``-1`` = junk) and camera.
NAME_PATTERN = re.compile(r'^(-?\d+)_c(\d+)')
SPLITS = ('train', 'val', 'query', 'gallery', 'test')


@DATASETS.register_module()
class Market1501(ReIDDataset):
    """Market-1501 (Zheng et al., 2015): ``bounding_box_train/``, ``query/``,
    ``bounding_box_test/``, names ``0002_c1s1_000451_03.jpg`` (pid 2, camera 1).

    The same layout serves DukeMTMC-reID, Occluded-Duke and CUHK03-NP as their owners publish
    them (see ``DukeMTMCreID``, ``OccludedDuke``, ``CUHK03NP``; no conversion needed), and any
    set converted to it. Junk images (pid -1) are dropped everywhere. ``split='train'``
    relabels pids (pid 0 is an ordinary identity in converted sets); ``'test'`` holds the query
    images (``is_query=True``) followed by the gallery, where Market's distractors (pid 0) stay
    as gallery images that match no query; ``'query'`` and ``'gallery'`` hold one part each.
    Camera ids are 0-based. ``'val'`` is carved from the training folder by ``val_holdout``
    (see :mod:`promptsg.datasets.holdout`): give ``train`` and ``val`` the same dict.

    Args:
        data_root: the folder holding the three layout folders.
        split: ``'train'``, ``'val'``, ``'query'``, ``'gallery'`` or ``'test'``.
        val_holdout: ``None`` | ``dict(mode='ids', size=0.1, seed=0)`` |
            ``dict(mode='images', seed=0)``; ``split='val'`` needs one.
    """

    splits = SPLITS
    #: Layout folder of each part, under :meth:`image_root`.
    folders = {'train': 'bounding_box_train', 'query': 'query', 'gallery': 'bounding_box_test'}
    #: File name -> (pid, 1-based camera); its first two groups.
    name_pattern = NAME_PATTERN
    name_hint = 'PPPP_cC...'
    extensions = ('.jpg', '.jpeg', '.png')
    holdout_modes = ('ids', 'images')

    def __init__(
        self, data_root: str, split: str = 'train', val_holdout: dict | None = None, **kwargs
    ) -> None:
        owner = type(self).__name__
        self.val_holdout = check_val_holdout(val_holdout, owner, self.holdout_modes)
        check_holdout_split(owner, split, self.val_holdout, self.holdout_modes, accepts=SPLITS)
        super().__init__(data_root=data_root, split=split, **kwargs)

    def image_root(self) -> str:
        """The folder holding the layout folders (``data_root`` here)."""
        return self.data_root

    def load_samples(self) -> list[dict]:
        if self.split in ('train', 'val'):
            samples = self._read_folder('train')
            if self.val_holdout is None:
                return samples
            return split_train_val(samples, self.val_holdout, self.split, type(self).__name__)
        parts = ('query', 'gallery') if self.split == 'test' else (self.split,)
        return [s for part in parts for s in self._read_folder(part)]

    def _read_folder(self, part: str) -> list[dict]:
        root = self.image_root()
        folder = os.path.join(root, self.folders[part])
        if not os.path.isdir(folder):
            raise DataError(
                f'{type(self).__name__} folder missing: {folder} (the layout needs '
                f'{", ".join(self.folders.values())} under {root})'
            )
        samples = []
        for name in sorted(os.listdir(folder)):
            if not name.lower().endswith(self.extensions):
                continue
            m = self.name_pattern.match(name)
            if m is None:
                raise DataError(
                    f'not a {type(self).__name__} file name ({self.name_hint}): '
                    f'{os.path.join(folder, name)}'
                )
            pid, camid = int(m.group(1)), int(m.group(2)) - 1
            if pid == -1:  # junk
                continue
            samples.append(
                dict(
                    img_path=os.path.join(folder, name),
                    pid=pid,
                    camid=camid,
                    is_query=part == 'query',
                )
            )
        return samples
