"""The P×K identity sampler: every batch holds P identities with K images each."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator

import numpy as np
from mmengine.dist import get_dist_info, sync_random_seed
from torch.utils.data import Sampler

from promptsg.errors import ConfigError
from promptsg.registry import DATA_SAMPLERS


@DATA_SAMPLERS.register_module()
class PKSampler(Sampler):
    """Yield sample indices so that each run of ``batch_size`` holds P = batch_size / K identities × K.

    Each epoch (``set_epoch``) draws a new seeded arrangement: an identity's images are shuffled and
    cut into chunks of K (an identity with fewer than K images is sampled with replacement); batches
    take P distinct identities. Under distributed training the batches are dealt to the ranks in
    turn, so every rank sees whole P×K batches and the ranks together see each batch once.

    Args:
        dataset: a data set with a ``pids`` list (``ReIDDataset``).
        batch_size: the data loader's batch size per process (must be a multiple of K).
        num_instances: K, images per identity in a batch.
        seed: base seed (mmengine passes the run's seed); synchronised across ranks.
    """

    def __init__(self, dataset, batch_size: int, num_instances: int = 4, seed: int | None = None):
        for key, value in (('batch_size', batch_size), ('num_instances', num_instances)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f'PKSampler: {key} must be a positive integer; got {value!r}')
        if batch_size % num_instances:
            raise ConfigError(
                f'PKSampler: batch_size ({batch_size}) must be a multiple of num_instances '
                f'({num_instances})'
            )
        self.dataset = dataset
        self.batch_size, self.num_instances = batch_size, num_instances
        self.num_pids_per_batch = batch_size // num_instances
        self.rank, self.world_size = get_dist_info()
        self.seed = sync_random_seed() if seed is None else seed
        self.epoch = 0
        self.index_by_pid = defaultdict(list)
        for idx, pid in enumerate(dataset.pids):
            self.index_by_pid[pid].append(idx)
        if len(self.index_by_pid) < self.num_pids_per_batch:
            raise ConfigError(
                f'PKSampler: the data set has {len(self.index_by_pid)} identities, fewer than the '
                f'{self.num_pids_per_batch} a batch of {batch_size} with K={num_instances} needs'
            )
        self.num_batches = len(self._batches(0)) // self.world_size

    def _batches(self, epoch: int) -> list[list[int]]:
        rng = np.random.default_rng([self.seed, epoch])
        k = self.num_instances
        chunks: dict[int, list[list[int]]] = {}
        for pid in sorted(self.index_by_pid):
            idxs = np.asarray(self.index_by_pid[pid])
            if len(idxs) < k:
                idxs = rng.choice(idxs, size=k, replace=True)
            idxs = rng.permutation(idxs)
            chunks[pid] = [idxs[i : i + k].tolist() for i in range(0, len(idxs) - k + 1, k)]
        batches = []
        while True:
            alive = [pid for pid, c in chunks.items() if c]
            if len(alive) < self.num_pids_per_batch:
                break
            picked = rng.choice(alive, size=self.num_pids_per_batch, replace=False)
            batches.append([i for pid in picked for i in chunks[int(pid)].pop()])
        return batches

    def __iter__(self) -> Iterator[int]:
        batches = self._batches(self.epoch)
        need = self.num_batches * self.world_size
        while len(batches) < need:  # epochs differ in how many whole batches they cut
            batches += batches[: need - len(batches)]
        mine = batches[self.rank :: self.world_size][: self.num_batches]
        return iter([i for b in mine for i in b])

    def __len__(self) -> int:
        return self.num_batches * self.batch_size

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
