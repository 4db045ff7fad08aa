"""11k Hands (Afifi, 2019) with the published per-aspect identification protocol (SPEC §4)."""

from __future__ import annotations

import os
from collections.abc import Sequence

from promptsg.datasets.base import ReIDDataset
from promptsg.datasets.csv_rows import read_csv_rows
from promptsg.datasets.protocols import (
    hold_out_one_per_id,
    monte_carlo_splits,
    split_ids_first_half,
)
from promptsg.errors import ConfigError, DataError
from promptsg.registry import DATASETS

ASPECTS = ('dorsal right', 'dorsal left', 'palmar right', 'palmar left')
#: Last training id per aspect in the published split (MBA-Net, Baisa et al.): ``int(id) <= t``.
PUBLISHED_THRESHOLDS = {
    'dorsal right': 1050,
    'dorsal left': 1037,
    'palmar right': 1051,
    'palmar left': 1042,
}
#: Other aspects' gallery pids become ``pid + (1 + ASPECTS.index(aspect)) * offset`` as distractors.
DISTRACTOR_PID_OFFSET = 10_000_000
REQUIRED_COLUMNS = ('id', 'accessories', 'aspectOfHand', 'imageName')
SPLITS = ('train', 'val', 'test')
GALLERIES = ('own', 'all_aspects')
TRAIN_ID_RULES = ('published', 'half')


@DATASETS.register_module()
class Hands11k(ReIDDataset):
    """11k Hands, one or more aspects, split into train / val / test by identity.

    - ``train``: the training ids' images minus one seeded held-out image per id (relabelled).
    - ``val``: the training ids only; the held-out image of each id is a query, the remaining
      training images are the gallery (``is_query`` set, no ``splits``).
    - ``test``: the test ids; ``metainfo['splits']`` holds ``num_splits`` seeded Monte-Carlo
      splits with one gallery image per id (``is_query`` follows split 0). With
      ``gallery='all_aspects'`` the other aspects' split galleries are added to each split's
      gallery as distractors, their pids offset so they never match (the published protocol).

    Args:
        data_root: folder with ``HandInfo.csv`` and ``Hands/``.
        split: ``'train'``, ``'val'`` or ``'test'``.
        aspects: one of ``ASPECTS`` or a list of them.
        accessories: keep rows with this ``accessories`` value (``None`` keeps all).
        num_splits: Monte-Carlo query/gallery splits of the test set.
        seed: seed of the held-out images and of the splits.
        gallery: ``'own'`` or ``'all_aspects'`` (test only).
        train_id_rule: ``'published'`` (per-aspect thresholds on the integer id; one aspect) or
            ``'half'`` (first ``ceil(n/2)`` of the sorted ids of the selected aspects).
    """

    splits = SPLITS

    def __init__(
        self,
        data_root: str,
        split: str = 'train',
        aspects: str | Sequence[str] = 'dorsal right',
        accessories: int | None = 0,
        num_splits: int = 10,
        seed: int = 0,
        gallery: str = 'own',
        train_id_rule: str = 'published',
        ann_file: str = 'HandInfo.csv',
        data_prefix: dict | None = None,
        **kwargs,
    ) -> None:
        _check_choice('gallery', gallery, GALLERIES)
        _check_choice('train_id_rule', train_id_rule, TRAIN_ID_RULES)
        if accessories not in (0, 1, None):
            raise ConfigError(f'accessories must be 0, 1 or None, got {accessories!r}')
        self.aspects = _parse_aspects(aspects)
        if train_id_rule == 'published' and len(self.aspects) > 1:
            raise ConfigError(
                "train_id_rule='published' has one threshold per aspect; use "
                f"train_id_rule='half' for several aspects {list(self.aspects)}"
            )
        self.accessories = accessories
        self.num_splits = num_splits
        self.seed = seed
        self.gallery = gallery
        self.train_id_rule = train_id_rule
        super().__init__(
            data_root=data_root,
            ann_file=ann_file,
            data_prefix=data_prefix or dict(img_path='Hands'),
            split=split,
            **kwargs,
        )

    def load_samples(self) -> list[dict]:
        rows = self._read_rows()
        self._metainfo['aspects'] = list(self.aspects)
        train_ids, test_ids = self._split_ids(rows, self.aspects)
        if self.split == 'test':
            return self._test_samples(rows, test_ids)
        samples = self._samples(rows, self.aspects, train_ids)
        kept, held_out = hold_out_one_per_id(
            [s['pid'] for s in samples], self.seed, keys=[s['img_path'] for s in samples]
        )
        if self.split == 'train':
            return [samples[i] for i in kept]
        held_out = set(held_out)
        for i, s in enumerate(samples):
            s['is_query'] = i in held_out
        return samples

    def _test_samples(self, rows: dict[str, list[tuple[int, str]]], test_ids: set) -> list[dict]:
        samples = self._samples(rows, self.aspects, test_ids)
        splits = monte_carlo_splits(
            [s['pid'] for s in samples],
            self.num_splits,
            self.seed,
            keys=[s['img_path'] for s in samples],
        )
        if self.gallery == 'all_aspects':
            for aspect in (a for a in ASPECTS if a not in self.aspects):
                self._add_distractors(rows, aspect, samples, splits)
        query0 = set(splits[0]['query'])
        for i, s in enumerate(samples):
            s['is_query'] = i in query0
        self._metainfo['splits'] = splits
        return samples

    def _add_distractors(
        self, rows: dict, aspect: str, samples: list[dict], splits: list[dict]
    ) -> None:
        """Append ``aspect``'s test gallery images (of any split) with offset pids."""
        _, test_ids = self._split_ids(rows, (aspect,))
        others = self._samples(rows, (aspect,), test_ids)
        other_splits = monte_carlo_splits(
            [s['pid'] for s in others],
            self.num_splits,
            self.seed,
            keys=[s['img_path'] for s in others],
        )
        used = sorted({i for split in other_splits for i in split['gallery']})
        position = {i: len(samples) + n for n, i in enumerate(used)}
        offset = (1 + ASPECTS.index(aspect)) * DISTRACTOR_PID_OFFSET
        for i in used:
            samples.append(dict(others[i], pid=others[i]['pid'] + offset))
        for split, other in zip(splits, other_splits):
            split['gallery'] = sorted(split['gallery'] + [position[i] for i in other['gallery']])

    def _split_ids(self, rows: dict, aspects: Sequence[str]) -> tuple[set, set]:
        pids = [pid for aspect in aspects for pid, _ in rows[aspect]]
        threshold = None
        if self.train_id_rule == 'published':
            threshold = PUBLISHED_THRESHOLDS[aspects[0]]
        train_ids, test_ids = split_ids_first_half(pids, threshold)
        if not train_ids or not test_ids:
            raise DataError(
                f'train_id_rule={self.train_id_rule!r} leaves {len(train_ids)} train and '
                f'{len(test_ids)} test ids for {", ".join(aspects)} in {self.ann_file}'
            )
        return set(train_ids), set(test_ids)

    def _samples(self, rows: dict, aspects: Sequence[str], pids: set) -> list[dict]:
        """Samples of ``aspects`` whose pid is in ``pids``, sorted, present on disk."""
        img_dir = self.data_prefix['img_path']
        samples = [
            dict(img_path=os.path.join(img_dir, name), pid=pid, camid=-1, aspect=aspect)
            for aspect in aspects
            for pid, name in rows[aspect]
            if pid in pids
        ]
        samples.sort(key=lambda s: (s['pid'], s['img_path']))
        return self._check_files(samples)

    def _read_rows(self) -> dict[str, list[tuple[int, str]]]:
        """(pid, imageName) per aspect, after the accessories filter, for every needed aspect."""
        img_dir = self.data_prefix['img_path']
        if not os.path.isdir(img_dir):
            raise DataError(f'11k Hands image folder not found: {img_dir}')
        rows = read_hand_info(self.ann_file)
        if self.test_mode or self.duplicates == 'drop':  # before the splits index the rows
            rows = self.drop_duplicates(rows, key='imageName')
        needed = ASPECTS if self.split == 'test' and self.gallery == 'all_aspects' else self.aspects
        by_aspect: dict[str, list[tuple[int, str]]] = {a: [] for a in ASPECTS}
        for row in rows:
            if self.accessories is not None and row['accessories'] != self.accessories:
                continue
            if row['aspect'] in by_aspect:
                by_aspect[row['aspect']].append((row['pid'], row['imageName']))
        for aspect in needed:
            if not by_aspect[aspect]:
                raise DataError(
                    f"{self.ann_file} has no rows with aspectOfHand == '{aspect}'"
                    f' and accessories == {self.accessories}'
                )
            if max(pid for pid, _ in by_aspect[aspect]) >= DISTRACTOR_PID_OFFSET:
                raise DataError(
                    f'{self.ann_file}: ids must be < {DISTRACTOR_PID_OFFSET} (distractor offset)'
                )
        return by_aspect


def read_hand_info(path: str) -> list[dict]:
    """Rows of ``HandInfo.csv`` as dicts: ``pid`` (int, whitespace stripped), ``accessories``
    (int), ``aspect``, ``imageName`` and ``row`` (``'HandInfo.csv line N'``)."""
    if not os.path.isfile(path):
        raise DataError(f'11k Hands annotation file not found: {path}')
    rows = []
    for line, values in read_csv_rows(path, REQUIRED_COLUMNS):
        for key in ('id', 'accessories'):
            if not values[key].isdigit():
                raise DataError(f'{path} line {line}: {key} {values[key]!r} is not an integer')
        rows.append(
            dict(
                pid=int(values['id']),
                accessories=int(values['accessories']),
                aspect=values['aspectOfHand'],
                imageName=values['imageName'],
                row=f'{os.path.basename(path)} line {line}',
            )
        )
    return rows


def _parse_aspects(aspects: str | Sequence[str]) -> tuple[str, ...]:
    names = [aspects] if isinstance(aspects, str) else list(aspects)
    if not names:
        raise ConfigError(f'aspects is empty; choose from {", ".join(map(repr, ASPECTS))}')
    for name in names:
        if name not in ASPECTS:
            raise ConfigError(
                f'unknown aspect {name!r} in aspects; choose from {", ".join(map(repr, ASPECTS))}'
            )
    return tuple(dict.fromkeys(names))


def _check_choice(key: str, value, choices: Sequence[str]) -> None:
    if value not in choices:
        raise ConfigError(f'{key}={value!r} is invalid; choose from {", ".join(choices)}')
