"""Run the versions of one chronology in order, each in its own work dir.

``run_chronology('configs/vit_b16', 'work_dirs/chronology/vit_b16', data_root=..., pretrained=...)``
trains and tests every version (``work_dirs/chronology/vit_b16/v1``, ``.../v2``, ...) exactly as
``tools/train.py`` does, holding the work dir's lock while it runs (a second run of the same
version waits for nothing: it is refused, naming the holder). A version whose work dir already
holds ``test_metrics.json`` is finished and is skipped unless ``force``; a forced re-run first
moves the old run aside (``v6.prev-<timestamp>``), so no result is ever deleted. An unfinished
run is continued with ``resume`` and otherwise refused, never trained over.
"""

from __future__ import annotations

import gc
import os.path as osp
from dataclasses import dataclass
from pathlib import Path

import torch
from mmengine.config import Config
from mmengine.logging import print_log

from promptsg.chronology.results import DONE, TEST_METRICS, read_test_metrics, version_status
from promptsg.chronology.versions import Version, find_versions, select_versions
from promptsg.engine.config import (
    apply_cfg_options,
    fill_num_classes,
    load_config,
    path_options,
    read_config,
    sync_sampler_batch_size,
)
from promptsg.engine.runner import (
    build_runner,
    check_datasets,
    test_best_checkpoint,
    write_metrics,
)
from promptsg.engine.workdir import claim_work_dir
from promptsg.errors import ConfigError

#: ``tools/run_chronology.py``'s names for continuing a version's run, replacing it, and elsewhere.
_FLAGS = ('--resume', '--force', '--work-root')


@dataclass
class VersionRun:
    """What happened to one version: ``'ran'`` or ``'skipped'``, and its test metrics."""

    name: str
    action: str
    work_dir: Path
    metrics: dict[str, float] | None


def merge_overlay(cfg: Config, overlay: str | Path) -> Config:
    """Merge an overlay config file (``_delete_=True`` honoured) on top of ``cfg``."""
    if not osp.isfile(overlay):
        raise ConfigError(f'overlay config not found: {overlay}')
    cfg.merge_from_dict(read_config(str(overlay)).to_dict())
    return cfg


def version_config(
    version: Version,
    options: dict | None = None,
    overlay: str | Path | None = None,
    data_root: str | None = None,
    pretrained: str | None = None,
    count_classes: bool = True,
) -> Config:
    """The config a version runs with: file, then overlay, then paths, then options.

    ``count_classes``: fill ``model.num_classes`` from the training set here (a run leaves it
    to :func:`build_runner`, which counts on the training set it trains on).
    """
    cfg = load_config(str(version.path))
    if overlay is not None:
        merge_overlay(cfg, overlay)
    apply_cfg_options(cfg, path_options(data_root, pretrained))
    apply_cfg_options(cfg, options)
    sync_sampler_batch_size(cfg)
    if count_classes:
        fill_num_classes(cfg)
    return cfg


def train_and_test(cfg: Config, work_dir: Path, resume: bool = False) -> dict[str, float]:
    """Train one version, test its best checkpoint, write ``test_metrics.json``."""
    datasets = check_datasets(cfg)  # a bad val or test set stops the run before training
    runner = build_runner(cfg, str(work_dir), resume='auto' if resume else None, datasets=datasets)
    try:
        runner.train()
        metrics = test_best_checkpoint(runner)
        write_metrics(metrics, str(work_dir / TEST_METRICS))
    finally:
        del runner
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    return metrics


def run_chronology(
    configs_dir: str | Path,
    work_root: str | Path,
    versions: list[str] | None = None,
    data_root: str | None = None,
    pretrained: str | None = None,
    options: dict | None = None,
    overlay: str | Path | None = None,
    force: bool = False,
    resume: bool = False,
) -> list[VersionRun]:
    """Run the chosen versions of ``configs_dir`` in order, each in ``work_root/<version>``."""
    chosen = select_versions(find_versions(configs_dir), versions)
    runs = []
    for version in chosen:
        work_dir = Path(work_root) / version.name
        if version_status(work_dir) == DONE and not force:
            print_log(f'{version.name}: finished, skipped ({work_dir / TEST_METRICS})', 'current')
            runs.append(VersionRun(version.name, 'skipped', work_dir, read_test_metrics(work_dir)))
            continue
        cfg = version_config(version, options, overlay, data_root, pretrained, count_classes=False)
        resume_run = resume and not force
        with claim_work_dir(str(work_dir), resume_run, overwrite=force, flags=_FLAGS):
            print_log(f'{version.name}: training in {work_dir}', 'current')
            metrics = train_and_test(cfg, work_dir, resume=resume_run)
        runs.append(VersionRun(version.name, 'ran', work_dir, metrics))
    return runs
