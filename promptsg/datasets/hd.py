"""HD, the PolyU hand-dorsal data set, with the published identification protocol (SPEC §4)."""

from __future__ import annotations

import os

from promptsg.datasets.base import ReIDDataset
from promptsg.datasets.protocols import (
    hold_out_one_per_id,
    monte_carlo_splits,
    split_ids_first_half,
)
from promptsg.errors import ConfigError, DataError
from promptsg.registry import DATASETS

IMG_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff')
SPLITS = ('train', 'val', 'test')
TRAIN_ID_RULES = ('half', 'published')
#: Last training id of MBA-Net's ``prepare_train_val_test_hd.py`` (``int(id) <= 447``).
PUBLISHED_THRESHOLD = 447


@DATASETS.register_module()
class HD(ReIDDataset):
    """HD hand-dorsal images ``<id>_<n>.jpg`` found anywhere under ``Original Images/``.

    Ids below ``distractor_from`` (1–501) are split by id into train and test (first half
    train); ids from ``distractor_from`` on (502–712) join every test gallery as distractors.
    ``train`` / ``val`` / ``test`` follow the 11k Hands protocol (see ``Hands11k``): one seeded
    held-out image per training id for validation, ``num_splits`` Monte-Carlo query/gallery
    splits with one gallery image per test id in ``metainfo['splits']``.

    Args:
        data_root: the HD folder (containing ``Original Images/``).
        split: ``'train'``, ``'val'`` or ``'test'``.
        num_splits: Monte-Carlo splits of the test set.
        seed: seed of the held-out images and of the splits.
        distractor_from: first id that is a gallery distractor.
        train_id_rule: ``'half'`` (first ``ceil(n/2)`` sorted ids) or ``'published'``
            (``id <= 447`` as in MBA-Net's script, whose comment calls it the first 251 ids).
        aspect: words for the prompt's ``{aspect}`` slot (``None``: no aspect).
    """

    splits = SPLITS

    def __init__(
        self,
        data_root: str,
        split: str = 'train',
        num_splits: int = 10,
        seed: int = 0,
        distractor_from: int = 502,
        train_id_rule: str = 'half',
        aspect: str | None = 'dorsal',
        data_prefix: dict | None = None,
        **kwargs,
    ) -> None:
        if train_id_rule not in TRAIN_ID_RULES:
            raise ConfigError(
                f'train_id_rule={train_id_rule!r} is invalid; '
                f'choose from {", ".join(TRAIN_ID_RULES)}'
            )
        self.num_splits = num_splits
        self.seed = seed
        self.distractor_from = distractor_from
        self.train_id_rule = train_id_rule
        self.aspect = aspect
        super().__init__(
            data_root=data_root,
            data_prefix=data_prefix or dict(img_path='Original Images'),
            split=split,
            **kwargs,
        )

    def load_samples(self) -> list[dict]:
        samples = self._scan()
        protocol = [s for s in samples if s['pid'] < self.distractor_from]
        if not protocol:
            img_dir = self.data_prefix['img_path']
            raise DataError(f'no HD images with id < {self.distractor_from} under {img_dir}')
        threshold = PUBLISHED_THRESHOLD if self.train_id_rule == 'published' else None
        train_ids, test_ids = split_ids_first_half([s['pid'] for s in protocol], threshold)
        if not train_ids or not test_ids:
            raise DataError(
                f'train_id_rule={self.train_id_rule!r} leaves {len(train_ids)} train and '
                f'{len(test_ids)} test ids under {self.data_prefix["img_path"]}'
            )
        train_ids, test_ids = set(train_ids), set(test_ids)
        if self.aspect:
            self._metainfo['aspects'] = [self.aspect]
        if self.split == 'test':
            return self._test_samples(samples, test_ids)
        train = [s for s in protocol if s['pid'] in train_ids]
        kept, held_out = hold_out_one_per_id(
            [s['pid'] for s in train], self.seed, keys=[s['img_path'] for s in train]
        )
        if self.split == 'train':
            return [train[i] for i in kept]
        held_out = set(held_out)
        for i, s in enumerate(train):
            s['is_query'] = i in held_out
        return train

    def _test_samples(self, samples: list[dict], test_ids: set) -> list[dict]:
        test = [s for s in samples if s['pid'] in test_ids]
        distractors = [s for s in samples if s['pid'] >= self.distractor_from]
        splits = monte_carlo_splits(
            [s['pid'] for s in test], self.num_splits, self.seed, keys=[s['img_path'] for s in test]
        )
        extra = list(range(len(test), len(test) + len(distractors)))
        for split in splits:
            split['gallery'] = split['gallery'] + extra
        query0 = set(splits[0]['query'])
        test += distractors
        for i, s in enumerate(test):
            s['is_query'] = i in query0
        self._metainfo['splits'] = splits
        return test

    def _scan(self) -> list[dict]:
        """Every image under the image folder, sorted by (pid, path); pid = prefix before '_'."""
        img_dir = self.data_prefix['img_path']
        if not os.path.isdir(img_dir):
            raise DataError(f'HD image folder not found: {img_dir}')
        samples = []
        for root, _, files in os.walk(img_dir):
            for name in files:
                if not name.lower().endswith(IMG_EXTENSIONS):
                    continue
                prefix = name.split('_', 1)[0]
                if '_' not in name or not prefix.isdigit():
                    raise DataError(
                        f'HD image name {os.path.join(root, name)!r} does not start with '
                        "'<id>_' (e.g. 12_3.jpg)"
                    )
                sample = dict(img_path=os.path.join(root, name), pid=int(prefix), camid=-1)
                if self.aspect:
                    sample['aspect'] = self.aspect
                samples.append(sample)
        samples.sort(key=lambda s: (s['pid'], s['img_path']))
        return samples
