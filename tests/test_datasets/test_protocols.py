import random
from collections import Counter

import pytest

from promptsg.datasets.protocols import (
    hold_out_one_per_id,
    monte_carlo_splits,
    split_ids_first_half,
)
from promptsg.errors import ConfigError

# 12 ids with 1..4 images each; keys are file names.
PIDS = [pid for pid in range(12) for _ in range(1 + pid % 4)]
KEYS = [f'{pid:03d}_{n}.jpg' for pid in range(12) for n in range(1 + pid % 4)]


def test_first_half_rounds_up_and_sorts():
    train, test = split_ids_first_half([9, 3, 3, 1, 7, 5])
    assert train == [1, 3, 5]
    assert test == [7, 9]
    train, test = split_ids_first_half([4, 1, 2, 3, 5])
    assert (train, test) == ([1, 2, 3], [4, 5])


def test_first_half_with_threshold():
    train, test = split_ids_first_half([1200000, 1050, 1051, 0, 93], threshold=1050)
    assert train == [0, 93, 1050]
    assert test == [1051, 1200000]


def test_hold_out_one_per_id():
    kept, held = hold_out_one_per_id(PIDS, seed=0, keys=KEYS)
    assert sorted(kept + held) == list(range(len(PIDS)))
    counts = Counter(PIDS)
    held_pids = [PIDS[i] for i in held]
    assert sorted(held_pids) == [pid for pid in sorted(counts) if counts[pid] >= 2]
    # a single-image id keeps its image for training
    assert {PIDS[i] for i in kept} == set(counts)


def test_hold_out_is_seeded_and_order_independent():
    _, held = hold_out_one_per_id(PIDS, seed=0, keys=KEYS)
    assert hold_out_one_per_id(PIDS, seed=0, keys=KEYS)[1] == held
    order = list(range(len(PIDS)))
    random.Random(1).shuffle(order)
    _, held_shuffled = hold_out_one_per_id(
        [PIDS[i] for i in order], seed=0, keys=[KEYS[i] for i in order]
    )
    assert sorted(KEYS[order[i]] for i in held_shuffled) == sorted(KEYS[i] for i in held)
    other = [hold_out_one_per_id(PIDS, seed=s, keys=KEYS)[1] for s in range(1, 4)]
    assert any(h != held for h in other)


def test_monte_carlo_one_gallery_image_per_id():
    splits = monte_carlo_splits(PIDS, num_splits=5, seed=0, keys=KEYS)
    assert len(splits) == 5
    for split in splits:
        gallery_pids = [PIDS[i] for i in split['gallery']]
        assert sorted(gallery_pids) == sorted(set(PIDS))
        assert not set(split['query']) & set(split['gallery'])
        assert sorted(split['query'] + split['gallery']) == list(range(len(PIDS)))
        # ids with a single image (pid % 4 == 0) are gallery only
        assert all(PIDS[i] % 4 != 0 for i in split['query'])
    assert len({tuple(s['gallery']) for s in splits}) > 1


def test_monte_carlo_is_seeded_stable_and_order_independent():
    splits = monte_carlo_splits(PIDS, num_splits=4, seed=3, keys=KEYS)
    assert monte_carlo_splits(PIDS, num_splits=4, seed=3, keys=KEYS) == splits
    assert monte_carlo_splits(PIDS, num_splits=2, seed=3, keys=KEYS) == splits[:2]
    assert monte_carlo_splits(PIDS, num_splits=4, seed=4, keys=KEYS) != splits
    order = list(range(len(PIDS)))
    random.Random(0).shuffle(order)
    shuffled = monte_carlo_splits(
        [PIDS[i] for i in order], num_splits=4, seed=3, keys=[KEYS[i] for i in order]
    )
    for a, b in zip(splits, shuffled):
        assert sorted(KEYS[i] for i in a['gallery']) == sorted(KEYS[order[i]] for i in b['gallery'])


def test_monte_carlo_choice_ignores_other_ids():
    full = monte_carlo_splits(PIDS, num_splits=3, seed=0, keys=KEYS)
    subset = [i for i, pid in enumerate(PIDS) if pid >= 6]
    part = monte_carlo_splits(
        [PIDS[i] for i in subset], num_splits=3, seed=0, keys=[KEYS[i] for i in subset]
    )
    for a, b in zip(full, part):
        assert [KEYS[subset[i]] for i in b['gallery']] == [
            KEYS[i] for i in a['gallery'] if PIDS[i] >= 6
        ]


def test_bad_arguments():
    with pytest.raises(ConfigError, match='num_splits'):
        monte_carlo_splits(PIDS, num_splits=0, seed=0)
    with pytest.raises(ConfigError, match='seed'):
        hold_out_one_per_id(PIDS, seed=-1)
    with pytest.raises(ValueError, match='keys'):
        monte_carlo_splits(PIDS, num_splits=1, seed=0, keys=KEYS[:3])
