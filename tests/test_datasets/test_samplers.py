"""PKSampler: P distinct identities × K images per batch, seeded per epoch, split across ranks."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import pytest
import torch
from mmengine.registry import DefaultScope
from mmengine.runner import Runner

from promptsg.datasets import samplers
from promptsg.datasets.samplers import PKSampler
from promptsg.datasets.synthetic import SyntheticReID
from promptsg.errors import ConfigError


class PidList:
    """The one thing PKSampler reads from a data set: the pid of every sample."""

    def __init__(self, counts: Sequence[int]) -> None:
        self.pids = [pid for pid, n in enumerate(counts) for _ in range(n)]


#: Images per identity from 1 to 11: some epochs arrange fewer whole batches than others.
UNEVEN = [5, 1, 1, 2, 1, 8, 6, 8, 3, 7, 9, 5, 6, 11, 9, 11, 5, 8, 11, 8]


def _batches(sampler: PKSampler) -> list[list[int]]:
    indices = list(sampler)
    size = sampler.batch_size
    assert len(indices) % size == 0
    return [indices[i : i + size] for i in range(0, len(indices), size)]


def _ranks(dataset, world_size: int, monkeypatch, **kwargs) -> list[PKSampler]:
    ranks = []
    for rank in range(world_size):
        monkeypatch.setattr(samplers, 'get_dist_info', lambda r=rank: (r, world_size))
        ranks.append(PKSampler(dataset, **kwargs))
    return ranks


@pytest.fixture(scope='module')
def dataset() -> SyntheticReID:
    return SyntheticReID(split='train', num_train_ids=10, images_per_id=6, img_size=(32, 16))


def test_every_batch_holds_p_distinct_ids_times_k(dataset):
    sampler = PKSampler(dataset, batch_size=12, num_instances=4, seed=0)
    pids = dataset.pids
    batches = _batches(sampler)
    assert batches
    for batch in batches:
        counts = Counter(pids[i] for i in batch)
        assert len(counts) == 3 and set(counts.values()) == {4}
        assert len(set(batch)) == 12  # 6 images per id: no repeats needed


def test_identity_with_fewer_than_k_images_is_sampled_with_replacement():
    sampler = PKSampler(PidList([1, 2, 4, 4]), batch_size=8, num_instances=4, seed=0)
    pids = PidList([1, 2, 4, 4]).pids
    for batch in _batches(sampler):
        assert set(Counter(pids[i] for i in batch).values()) == {4}


def test_epochs_differ_and_repeat_for_the_same_seed_and_epoch(dataset):
    sampler = PKSampler(dataset, batch_size=8, num_instances=4, seed=1)
    twin = PKSampler(dataset, batch_size=8, num_instances=4, seed=1)
    other_seed = PKSampler(dataset, batch_size=8, num_instances=4, seed=2)
    epoch0 = list(sampler)
    assert list(sampler) == epoch0 == list(twin)
    assert list(other_seed) != epoch0
    sampler.set_epoch(1)
    epoch1 = list(sampler)
    assert epoch1 != epoch0
    pids = dataset.pids
    assert Counter(pids[i] for i in epoch1) == Counter(pids[i] for i in epoch0)
    twin.set_epoch(1)
    assert list(twin) == epoch1


@pytest.mark.parametrize('world_size', [1, 2])
def test_length_matches_what_every_epoch_yields(world_size, monkeypatch):
    """DataLoader, schedulers and DDP all trust ``len(sampler)``; a short epoch hangs DDP."""
    for sampler in _ranks(PidList(UNEVEN), world_size, monkeypatch, batch_size=16, seed=2):
        for epoch in range(20):
            sampler.set_epoch(epoch)
            assert len(list(sampler)) == len(sampler), f'epoch {epoch}'


@pytest.mark.parametrize('world_size', [2, 3])
def test_ranks_split_whole_batches_disjointly(world_size, dataset, monkeypatch):
    kwargs = dict(batch_size=8, num_instances=4, seed=5)
    (single,) = _ranks(dataset, 1, monkeypatch, **kwargs)
    ranks = _ranks(dataset, world_size, monkeypatch, **kwargs)
    for epoch in (0, 3):
        single.set_epoch(epoch)
        every = [tuple(b) for b in _batches(single)]
        per_rank = []
        for sampler in ranks:
            sampler.set_epoch(epoch)
            per_rank.append([tuple(b) for b in _batches(sampler)])
        assert len({len(b) for b in per_rank}) == 1  # equal iterations on every rank
        seen = [b for batches in per_rank for b in batches]
        assert len(seen) == len(set(seen))  # no batch on two ranks
        assert set(seen) <= set(every)
        assert len(seen) == len(every) // world_size * world_size
        flat = [i for b in seen for i in b]
        assert len(flat) == len(set(flat))  # no image twice in an epoch across ranks


def test_built_by_the_runner_dataloader_with_its_seed(dataset):
    with DefaultScope.overwrite_default_scope('promptsg'):
        loader = Runner.build_dataloader(
            dict(
                batch_size=8,
                num_workers=0,
                sampler=dict(type='PKSampler', batch_size=8, num_instances=4),
                collate_fn=dict(type='default_collate'),
                dataset=dict(
                    type='SyntheticReID',
                    num_train_ids=10,
                    images_per_id=6,
                    img_size=(32, 16),
                    pipeline=[dict(type='LoadImage'), dict(type='PackReIDInputs')],
                ),
            ),
            seed=7,
        )
    assert loader.sampler.seed == 7
    batch = next(iter(loader))
    assert batch['inputs'].shape == (8, 3, 32, 16) and batch['inputs'].dtype == torch.uint8
    assert sorted(Counter(batch['data_samples']['pid'].tolist()).values()) == [4, 4]


@pytest.mark.parametrize(
    'counts, kwargs, match',
    [
        ([4] * 4, dict(batch_size=10, num_instances=4), r'batch_size \(10\).*num_instances \(4\)'),
        ([4] * 4, dict(batch_size=8, num_instances=0), 'num_instances'),
        ([4] * 2, dict(batch_size=12, num_instances=4), '2 identities, fewer than the 3'),
    ],
)
def test_bad_settings_are_config_errors(counts, kwargs, match):
    with pytest.raises(ConfigError, match=match):
        PKSampler(PidList(counts), seed=0, **kwargs)
