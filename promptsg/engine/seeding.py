"""Seeding of data-loader workers so that augmentations differ from epoch to epoch."""

from __future__ import annotations

import random

import numpy as np
import torch

from promptsg.registry import FUNCTIONS


@FUNCTIONS.register_module()
def reid_worker_init_fn(worker_id: int) -> None:
    """Seed NumPy and ``random`` in a data-loader worker from torch's seed for that worker.

    PyTorch seeds each worker's torch generator with ``base_seed + worker_id``, drawing
    ``base_seed`` from the main process's generator for every epoch, so it is reproducible under
    a fixed seed yet new each epoch. mmengine's default ``worker_init_fn`` re-seeds every worker
    with ``seed + worker_id`` instead, which repeats the same augmentations every epoch whenever
    ``num_workers > 0`` (workers are recreated each epoch). ``build_runner`` makes this function
    the default of ``train_dataloader.worker_init_fn``.
    """
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)
