"""What a version's work dir says it did: test metrics and validation curves, read from JSON.

A work dir is what ``tools/train.py`` (or ``tools/run_chronology.py``) leaves: one folder per run,
``<timestamp>/vis_data/scalars.json`` (one JSON record per line; validation records carry
``reid/mAP``, ``reid/rank1``, ... and ``step`` = epoch), and ``test_metrics.json`` (the flat
metric dict of the final test: ``reid/rank1``, ``reid/rank1_std``, ``reid/split0/rank1``, ...).
No text log is parsed.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd

from promptsg.errors import DataError

TEST_METRICS = 'test_metrics.json'
_RUN_DIR = re.compile(r'^\d{8}_\d{6}$')
#: Metric columns of the results, in this order when present.
METRIC_ORDER = ('rank1', 'rank5', 'rank10', 'mAP', 'mINP')
_SPLIT_KEY = re.compile(r'^split(\d+)/(.+)$')

DONE, INCOMPLETE, NOT_RUN = 'done', 'incomplete', 'not run'


def read_json(path: Path) -> dict:
    try:
        with open(path, encoding='utf-8') as f:
            return json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise DataError(f'cannot read {path}: {e}') from e


def read_test_metrics(work_dir: str | Path) -> dict[str, float] | None:
    """The final test metrics of a work dir, or None when the run has not finished."""
    path = Path(work_dir) / TEST_METRICS
    return read_json(path) if path.is_file() else None


def run_dirs(work_dir: str | Path) -> list[Path]:
    """The run folders (``YYYYmmdd_HHMMSS``) of a work dir, oldest first."""
    folder = Path(work_dir)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_dir() and _RUN_DIR.match(p.name))


def version_status(work_dir: str | Path) -> str:
    """``'done'`` (test metrics written), ``'incomplete'`` (runs, no test) or ``'not run'``."""
    if (Path(work_dir) / TEST_METRICS).is_file():
        return DONE
    return INCOMPLETE if run_dirs(work_dir) else NOT_RUN


def _val_records(scalars: Path, prefix: str) -> dict[int, dict[str, float]]:
    records: dict[int, dict[str, float]] = {}
    if not scalars.is_file():
        return records
    with open(scalars, encoding='utf-8') as f:
        for n, line in enumerate(f, start=1):
            line = line.strip()
            if not line:
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f'{scalars} line {n} is not JSON: {e}') from e
            if f'{prefix}/mAP' not in record or 'iter' in record:
                continue  # a training record
            metrics = {
                k[len(prefix) + 1 :]: float(v)
                for k, v in record.items()
                if k.startswith(f'{prefix}/') and isinstance(v, int | float)
            }
            records[int(record['step'])] = metrics
    return records


def read_val_curve(work_dir: str | Path, prefix: str = 'reid') -> pd.DataFrame:
    """Validation metrics per epoch (columns ``epoch``, ``rank1``, ``mAP``, ...).

    Runs are read oldest first. A run that starts no later than the curve so far is a fresh
    start and replaces it; a resumed run replaces the epochs from its first one on.
    """
    curve: dict[int, dict[str, float]] = {}
    for run in run_dirs(work_dir):
        records = _val_records(run / 'vis_data' / 'scalars.json', prefix)
        if not records:
            continue
        first = min(records)
        if not curve or first <= min(curve):
            curve = {}
        curve = {e: m for e, m in curve.items() if e < first}
        curve.update(records)
    rows = [{'epoch': epoch, **metrics} for epoch, metrics in sorted(curve.items())]
    return pd.DataFrame(rows, columns=['epoch', *_columns(rows)])


def _columns(rows: list[dict]) -> list[str]:
    keys = {k for row in rows for k in row if k != 'epoch'}
    return [k for k in METRIC_ORDER if k in keys] + sorted(keys - set(METRIC_ORDER))


def split_rows(metrics: dict[str, float], prefix: str = 'reid') -> list[dict]:
    """Rows ``split0..splitN-1``, ``mean`` and (with several splits) ``std`` of a test metric
    dict; columns are the metrics of ``METRIC_ORDER`` present in it."""
    mean: dict[str, float] = {}
    std: dict[str, float] = {}
    splits: dict[int, dict[str, float]] = {}
    for key, value in metrics.items():
        if not key.startswith(f'{prefix}/'):
            continue
        name = key[len(prefix) + 1 :]
        match = _SPLIT_KEY.match(name)
        if match:
            metric = match.group(2)
            if metric in METRIC_ORDER:
                splits.setdefault(int(match.group(1)), {})[metric] = float(value)
        elif name.endswith('_std') and name[:-4] in METRIC_ORDER:
            std[name[:-4]] = float(value)
        elif name in METRIC_ORDER:
            mean[name] = float(value)
    rows = [{'split': f'split{i}', **splits[i]} for i in sorted(splits)]
    rows.append({'split': 'mean', **mean})
    if std:
        rows.append({'split': 'std', **std})
    return rows


def best_epoch(curve: pd.DataFrame, metric: str = 'mAP') -> tuple[int, float] | None:
    """The first epoch with the highest validation ``metric`` and that value (None if no curve)."""
    if curve.empty or metric not in curve:
        return None
    values = curve[metric]
    if values.isna().all():
        return None
    row = curve.loc[values.idxmax()]  # the first maximum
    return int(row['epoch']), float(row[metric])
