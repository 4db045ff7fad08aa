"""Seeded, pure split functions of the hand-identification protocols (11k Hands, HD).

Every random choice of an identity uses its own generator seeded with ``(seed, [split,] pid)``,
and images are ordered by their ``keys`` (e.g. file names) before drawing. A choice therefore
depends only on the seed and that identity's images: not on the input order, not on which other
identities are present, and split ``k`` is the same whatever ``num_splits`` is.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence

import numpy as np

from promptsg.errors import ConfigError


def split_ids_first_half(
    pids: Iterable[int], threshold: int | None = None
) -> tuple[list[int], list[int]]:
    """Split identities into (train_ids, test_ids), both sorted.

    With ``threshold`` the train ids are those ``<= threshold`` (the published 11k/HD rule);
    without it the first ``ceil(n / 2)`` of the sorted unique ids train, the rest test.
    """
    ids = sorted(set(pids))
    if threshold is not None:
        return [i for i in ids if i <= threshold], [i for i in ids if i > threshold]
    n_train = math.ceil(len(ids) / 2)
    return ids[:n_train], ids[n_train:]


def hold_out_one_per_id(
    pids: Sequence[int], seed: int, keys: Sequence | None = None
) -> tuple[list[int], list[int]]:
    """Hold out one random image per identity: returns (kept, held_out) positions, sorted.

    Identities with a single image are never held out (their only image stays in ``kept``):
    holding it out would leave a validation query without any match and the id without any
    training image. ``keys`` order the images within an id (default: their positions).
    """
    kept, held_out = [], []
    for pid, positions in _group(pids, keys).items():
        if len(positions) < 2:
            kept.extend(positions)
            continue
        pick = _rng(seed, pid, purpose=0).integers(len(positions))
        held_out.append(positions[pick])
        kept.extend(p for i, p in enumerate(positions) if i != pick)
    return sorted(kept), sorted(held_out)


def hold_out_ids(pids: Iterable[int], count: int, seed: int) -> list[int]:
    """``count`` seeded identities of ``pids`` (sorted): the ``count`` smallest per-id draws.

    Each id's draw comes from its own generator, so whether an id is held out depends only on
    the seed, its own draw and ``count``, never on the input order.
    """
    ids = sorted(set(int(p) for p in pids))
    draws = {pid: _rng(seed, pid, purpose=2).random() for pid in ids}
    return sorted(sorted(ids, key=lambda pid: (draws[pid], pid))[:count])


def query_per_camera(
    pids: Sequence[int], camids: Sequence[int], seed: int, keys: Sequence | None = None
) -> list[int]:
    """Positions of the query images of a held-out-id validation set (sorted).

    Per id, one seeded image per camera is a query, unless no image of that id from another
    camera would stay in the gallery (then it stays in the gallery, so every query keeps a
    match under the same-id-same-camera rule). Cameras are visited in order. An id whose
    cameras are unknown (``camid < 0``) gets one query when it has two or more images. An id
    seen by a single camera, or with a single image, is gallery-only (a distractor).
    """
    queries = []
    for pid, positions in _group(pids, keys).items():
        cams = sorted({camids[p] for p in positions})
        if cams[0] < 0:
            if len(positions) > 1:
                queries.append(positions[_rng(seed, pid, purpose=3).integers(len(positions))])
            continue
        chosen = set()
        for cam in cams:
            on_cam = [p for p in positions if camids[p] == cam]
            pick = on_cam[_rng(seed, pid, purpose=3, split=cam).integers(len(on_cam))]
            chosen.add(pick)
        for cam in cams:
            pick = next(p for p in chosen if camids[p] == cam)
            matches = [p for p in positions if camids[p] != cam and p not in chosen]
            if not matches:
                chosen.discard(pick)
        queries.extend(chosen)
    return sorted(queries)


def monte_carlo_splits(
    pids: Sequence[int], num_splits: int, seed: int, keys: Sequence | None = None
) -> list[dict[str, list[int]]]:
    """``num_splits`` query/gallery splits: each id puts one random image in the gallery.

    Returns ``[{'query': [positions], 'gallery': [positions]}, ...]`` (sorted positions into
    ``pids``). The other images of the id are queries; an id with a single image is gallery only
    (no query), as in the published preparation scripts.
    """
    if not isinstance(num_splits, int) or num_splits < 1:
        raise ConfigError(f'num_splits must be a positive integer, got {num_splits!r}')
    groups = _group(pids, keys)
    splits = []
    for k in range(num_splits):
        query, gallery = [], []
        for pid, positions in groups.items():
            pick = _rng(seed, pid, purpose=1, split=k).integers(len(positions))
            gallery.append(positions[pick])
            query.extend(p for i, p in enumerate(positions) if i != pick)
        splits.append({'query': sorted(query), 'gallery': sorted(gallery)})
    return splits


def _group(pids: Sequence[int], keys: Sequence | None) -> dict[int, list[int]]:
    """Positions of each pid (pids in sorted order), ordered by ``keys`` then position."""
    if keys is not None and len(keys) != len(pids):
        raise ValueError(f'{len(keys)} keys for {len(pids)} pids')
    groups: dict[int, list[int]] = defaultdict(list)
    for pos, pid in enumerate(pids):
        groups[int(pid)].append(pos)
    if keys is not None:
        for positions in groups.values():
            positions.sort(key=lambda p: (keys[p], p))
    return {pid: groups[pid] for pid in sorted(groups)}


def _rng(seed: int, pid: int, purpose: int, split: int = 0) -> np.random.Generator:
    """A generator for one choice: hold-out image (purpose 0), Monte-Carlo split ``split`` (1),
    held-out id (2) or held-out id's query on camera ``split`` (3)."""
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f'seed must be a non-negative integer, got {seed!r}')
    return np.random.default_rng([int(seed), purpose, split, int(pid < 0), abs(int(pid))])
