"""Market-1501 layout: ``bounding_box_train/``, ``query/``, ``bounding_box_test/``."""

from __future__ import annotations

import os
import re

from promptsg.datasets.base import ReIDDataset
from promptsg.errors import DataError
from promptsg.registry import DATASETS

#: ``PPPP_cCsS_FFFFFF_NN.jpg``: pid (``-1`` = junk) and camera.
NAME_PATTERN = re.compile(r'^(-?\d+)_c(\d+)')
SPLIT_DIRS = {
    'train': ('bounding_box_train',),
    'query': ('query',),
    'gallery': ('bounding_box_test',),
}
SPLIT_DIRS['test'] = SPLIT_DIRS['query'] + SPLIT_DIRS['gallery']


@DATASETS.register_module()
class Market1501(ReIDDataset):
    """A data set in the Market-1501 layout (also CUHK03-NP, MSMT17 and Duke once converted).

    Junk images (pid -1) are dropped everywhere. ``split='train'`` relabels pids (pid 0 is an
    ordinary identity in converted sets such as CUHK03-NP); ``'test'`` holds the query images
    (``is_query=True``) followed by the gallery, where Market's distractors (pid 0) stay as
    gallery images that match no query. Camera ids are 0-based.
    """

    splits = tuple(SPLIT_DIRS)

    def __init__(self, data_root: str, split: str = 'train', **kwargs) -> None:
        super().__init__(data_root=data_root, split=split, **kwargs)

    def load_samples(self) -> list[dict]:
        samples = []
        for sub in SPLIT_DIRS[self.split]:
            folder = os.path.join(self.data_root, sub)
            if not os.path.isdir(folder):
                raise DataError(f'Market1501 folder missing: {folder}')
            for name in sorted(os.listdir(folder)):
                if not name.lower().endswith(('.jpg', '.jpeg', '.png')):
                    continue
                m = NAME_PATTERN.match(name)
                if m is None:
                    raise DataError(
                        f'not a Market-1501 file name (PPPP_cC...): {os.path.join(folder, name)}'
                    )
                pid, camid = int(m.group(1)), int(m.group(2)) - 1
                if pid == -1:  # junk
                    continue
                samples.append(
                    dict(
                        img_path=os.path.join(folder, name),
                        pid=pid,
                        camid=camid,
                        is_query=sub == 'query',
                    )
                )
        return samples
