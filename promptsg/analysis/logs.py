"""mmengine's JSON scalar logs of a work dir as tables: training scalars per iteration,
validation metrics per epoch, and the time per iteration.

A run of ``tools/train.py`` writes ``<work_dir>/<YYYYmmdd_HHMMSS>/vis_data/scalars.json`` (one
JSON record per line; LocalVisBackend) and the same records in ``<run>/<run>.json``
(LoggerHook). A training record has ``iter``, ``epoch`` and ``step`` (the global iteration); a
validation record has no ``iter`` and ``step`` = epoch (or iteration in iteration-based runs).
"""

from __future__ import annotations

import difflib
import fnmatch
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from promptsg.chronology.results import run_dirs
from promptsg.errors import ConfigError, DataError

#: Keys of a training record that are bookkeeping, not scalars to plot.
INDEX_KEYS = ('epoch', 'iter', 'step')


@dataclass
class RunLog:
    """The scalars of one work dir (its runs joined: a resumed run replaces the steps it
    repeats). ``train``: one row per logged iteration (column ``step``, plus ``epoch``);
    ``val``: one row per validation (column ``step``)."""

    name: str
    source: list[Path]
    train: pd.DataFrame = field(default_factory=pd.DataFrame)
    val: pd.DataFrame = field(default_factory=pd.DataFrame)
    starts: list[int] = field(default_factory=list)  # first logged step of each run

    def keys(self) -> tuple[list[str], list[str]]:
        """Plottable scalar names: (training, validation)."""
        drop = set(INDEX_KEYS)
        return (
            [k for k in self.train.columns if k not in drop],
            [k for k in self.val.columns if k not in drop],
        )


def log_files(path: str | Path) -> list[Path]:
    """The JSON scalar logs under ``path``, oldest run first.

    ``path`` is a work dir (every run in it), a run folder, or a ``.json`` log itself.

    Raises:
        DataError: the path does not exist or holds no mmengine JSON log.
    """
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise DataError(f'log not found: {path} (pass a work dir, a run folder or a .json log)')
    runs = run_dirs(path) or [path]
    files = []
    for run in runs:
        scalars = run / 'vis_data' / 'scalars.json'
        own = run / f'{run.name}.json'
        if scalars.is_file():
            files.append(scalars)
        elif own.is_file():
            files.append(own)
    if not files:
        raise DataError(
            f'no mmengine JSON log in {path}: expected <run>/vis_data/scalars.json or '
            '<run>/<run>.json (is it a training work dir?)'
        )
    return files


def _records(path: Path) -> tuple[dict[int, dict], dict[int, dict]]:
    train: dict[int, dict] = {}
    val: dict[int, dict] = {}
    with open(path, encoding='utf-8') as f:
        for n, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f'{path} line {n} is not JSON: {e}') from e
            if not isinstance(record, dict) or 'step' not in record:
                continue
            scalars = {k: v for k, v in record.items() if isinstance(v, int | float)}
            (train if 'iter' in record else val)[int(record['step'])] = scalars
    return train, val


def _join(old: dict[int, dict], new: dict[int, dict]) -> dict[int, dict]:
    """A later run: a fresh start (first step <= the first so far) replaces everything, a
    resumed one replaces the steps from its first on."""
    if not new:
        return old
    first = min(new)
    if old and first <= min(old):
        old = {}
    return {**{s: r for s, r in old.items() if s < first}, **new}


def read_run_log(path: str | Path, name: str | None = None) -> RunLog:
    """Read every run of a work dir (or one run, or one log file) into a :class:`RunLog`."""
    files = log_files(path)
    train: dict[int, dict] = {}
    val: dict[int, dict] = {}
    starts = []
    for file in files:
        t, v = _records(file)
        train, val = _join(train, t), _join(val, v)
        starts += [min(t)] if t else []

    def frame(rows: dict[int, dict]) -> pd.DataFrame:
        if not rows:
            return pd.DataFrame(columns=['step'])
        return pd.DataFrame([rows[s] | {'step': s} for s in sorted(rows)])

    return RunLog(name or Path(path).name, files, frame(train), frame(val), starts)


def match_keys(logs: list[RunLog], patterns: list[str]) -> tuple[list[str], list[str]]:
    """Training and validation keys matching ``patterns`` (exact names or globs such as
    ``loss*``, ``lr_*``, ``reid/*``), in pattern order.

    Raises:
        ConfigError: a pattern matches nothing in any log (naming the logged keys).
    """
    train_all = sorted({k for log in logs for k in log.keys()[0]})
    val_all = sorted({k for log in logs for k in log.keys()[1]})
    train, val = [], []
    for pattern in patterns:
        hits_t = [k for k in train_all if fnmatch.fnmatchcase(k, pattern)]
        hits_v = [k for k in val_all if fnmatch.fnmatchcase(k, pattern)]
        if not hits_t and not hits_v:
            every = sorted(set(train_all) | set(val_all))
            close = difflib.get_close_matches(pattern, every, n=len(every), cutoff=0.0)
            raise ConfigError(
                f"--keys '{pattern}' matches no logged scalar; logged (closest first): "
                + ', '.join(close[:25])
                + (f' (+{len(close) - 25} more)' if len(close) > 25 else '')
            )
        train += [k for k in hits_t if k not in train]
        val += [k for k in hits_v if k not in val]
    return train, val


def plot_scalars(
    logs: list[RunLog], train_keys: list[str], val_keys: list[str], path: str | Path
) -> Path:
    """One panel per key: training scalars against the iteration, validation metrics against
    the epoch (or iteration); one line per log. Written as PNG."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    panels = [('train', k) for k in train_keys] + [('val', k) for k in val_keys]
    cols = min(3, len(panels))
    rows = -(-len(panels) // cols)
    fig = Figure(figsize=(5.2 * cols, 3.6 * rows))
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    for ax, (kind, key) in zip(axes, panels):
        for log in logs:
            frame = log.train if kind == 'train' else log.val
            if key in frame:
                data = frame[['step', key]].dropna()
                marker = 'o' if kind == 'val' or len(data) < 30 else None
                ax.plot(data['step'], data[key], marker=marker, ms=3, label=log.name)
        ax.set_title(key if kind == 'train' else f'{key} (validation)')
        ax.set_xlabel('iteration' if kind == 'train' else 'epoch')
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        if len(logs) > 1:
            ax.legend(fontsize=8)
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, format='png')
    return path


def time_summary(log: RunLog) -> dict:
    """Seconds per training iteration (mmengine's ``time``: data loading + step) and of data
    loading alone (``data_time``), from the logged values (each the mean over the logger's
    window, ``log_processor.window_size``).

    The first logged iteration of every run is left out (it pays for start-up) unless nothing
    else is left. Epoch figures are the mean logged time per epoch.
    """
    train = log.train
    if train.empty or 'time' not in train:
        raise DataError(f'{log.name}: the log has no training iterations with a time')
    steady = train[~train['step'].isin(log.starts)]
    if steady.empty:
        steady = train
    summary = dict(
        name=log.name,
        iters=int(train['step'].max()),
        logged=int(len(train)),
        mean=float(steady['time'].mean()),
        std=float(steady['time'].std(ddof=0)),
        median=float(steady['time'].median()),
        data=float(steady['data_time'].mean()) if 'data_time' in steady else float('nan'),
    )
    if 'epoch' in steady:
        per_epoch = steady.groupby('epoch')['time'].mean()
        summary.update(
            epochs=int(train['epoch'].max()),
            slowest_epoch=int(per_epoch.idxmax()),
            slowest=float(per_epoch.max()),
            fastest_epoch=int(per_epoch.idxmin()),
            fastest=float(per_epoch.min()),
        )
    return summary
