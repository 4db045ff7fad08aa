"""The chronology's artefacts from a configs folder and the versions' work dirs.

For a chronology named ``<name>`` (by default the configs folder's name, e.g. ``vit_b16``)
:func:`write_artefacts` writes into ``out_dir``:

- ``stage3_<name>_remarks.csv`` — ``model_version,remarks``;
- ``stage3_<name>_results.csv`` — per version, one row per test split plus ``mean`` and ``std``;
- ``stage3_<name>_chronology.md`` — the table: version, moves vs the previous version (diffed
  from the resolved configs), loss/head/scheduler, extra optimisation, final scores (best marked,
  versions not run shown as such), best validation epoch;
- ``stage3_<name>_val_curves.png`` — validation mAP and Rank-1 per epoch, every version;
- ``stage3_<name>_final_scores.png`` — test Rank-1 and mAP per version.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from promptsg.chronology.moves import describe_moves, loss_head_schedule, optimisation
from promptsg.chronology.results import (
    DONE,
    METRIC_ORDER,
    best_epoch,
    read_test_metrics,
    read_val_curve,
    split_rows,
    version_status,
)
from promptsg.chronology.versions import Version, find_versions

PREFIX = 'reid'


@dataclass
class VersionRecord:
    """One version: its config, notes, moves vs the previous version and what its run left."""

    version: Version
    cfg: dict
    notes: dict[str, str]
    moves: list[str]
    status: str
    test: dict[str, float] | None = None
    curve: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def name(self) -> str:
        return self.version.name

    def score(self, metric: str) -> float | None:
        """The mean test ``metric`` (e.g. 'mAP'), None when the version has no test result."""
        if self.test is None or f'{PREFIX}/{metric}' not in self.test:
            return None
        return float(self.test[f'{PREFIX}/{metric}'])


def collect(configs_dir: str | Path, work_root: str | Path) -> list[VersionRecord]:
    """Every version of ``configs_dir`` with the results in ``work_root/<version>``."""
    records, previous = [], None
    for version in find_versions(configs_dir):
        cfg = version.resolved()
        work_dir = Path(work_root) / version.name
        records.append(
            VersionRecord(
                version=version,
                cfg=cfg,
                notes=version.notes(),
                moves=describe_moves(previous, cfg),
                status=version_status(work_dir),
                test=read_test_metrics(work_dir),
                curve=read_val_curve(work_dir, PREFIX),
            )
        )
        previous = cfg
    return records


def best_version(records: list[VersionRecord]) -> VersionRecord | None:
    """The finished version with the highest test mAP (the earliest on a tie)."""
    done = [r for r in records if r.status == DONE and r.score('mAP') is not None]
    return max(done, key=lambda r: r.score('mAP')) if done else None


def remarks_frame(records: list[VersionRecord]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            'model_version': [r.name for r in records],
            'remarks': [r.notes['remark'] for r in records],
        }
    )


def results_frame(records: list[VersionRecord]) -> pd.DataFrame:
    """Finished versions' test metrics: ``model_version, split, rank1, rank5, rank10, mAP, ...``."""
    rows = [
        {'model_version': r.name, **row}
        for r in records
        if r.test is not None
        for row in split_rows(r.test, PREFIX)
    ]
    present = {k for row in rows for k in row}
    columns = ['model_version', 'split', *(k for k in METRIC_ORDER if k in present)]
    return pd.DataFrame(rows, columns=columns)


def _with_std(record: VersionRecord, metric: str) -> str:
    value = record.score(metric)
    std = record.test.get(f'{PREFIX}/{metric}_std') if record.test else None
    return f'{value:.2f}' + (f' ± {std:.2f}' if std is not None else '')


def scores_text(record: VersionRecord, best: VersionRecord | None) -> str:
    """``R1 80.83 ± 0.61, mAP 86.63 ± 0.40`` (**bold** and marked for the best version)."""
    if record.test is None:
        return record.status
    text = f'R1 {_with_std(record, "rank1")}, mAP {_with_std(record, "mAP")}'
    return f'**{text}** (best)' if record is best else text


def chronology_frame(records: list[VersionRecord]) -> pd.DataFrame:
    best = best_version(records)
    rows = []
    for r in records:
        val = best_epoch(r.curve)
        rows.append(
            {
                'Ver.': f'**{r.name}**',
                'Configuration moves (vs previous)': '; '.join(r.moves)
                or ('baseline' if r is records[0] else 'no change'),
                'Loss / Head / Scheduler': loss_head_schedule(r.cfg),
                'Extra Optim./Reg.': optimisation(r.cfg),
                'Final scores (test)': scores_text(r, best),
                'Best val mAP (epoch)': f'{val[1]:.2f} ({val[0]})' if val else '',
            }
        )
    return pd.DataFrame(rows)


def _protocol(records: list[VersionRecord]) -> str:
    """How the final scores were measured, from the configs and the metrics."""
    first = next((r for r in records if r.test is not None), records[0])
    evaluator = first.cfg.get('test_evaluator') or {}
    ap = evaluator.get('ap', 'standard')
    splits = sum(1 for r in split_rows(first.test or {}, PREFIX) if r['split'].startswith('split'))
    over = f'mean ± std over {splits} test splits' if splits > 1 else 'one test split'
    return (
        f'Final scores: test Rank-1 and mAP ({ap} AP), {over}, of the best-validation checkpoint.'
    )


def chronology_markdown(records: list[VersionRecord], name: str) -> str:
    """The chronology table in markdown, with a title and the protocol line."""
    table = chronology_frame(records).to_markdown(index=False)
    best = best_version(records)
    lines = [
        f'## {name} (Stage-3 PromptSG chronology)',
        '',
        _protocol(records),
        f'Best version: {best.name}.' if best else 'No version has finished yet.',
        '',
        table,
        '',
    ]
    return '\n'.join(lines)


def plot_val_curves(records: list[VersionRecord], path: Path, name: str) -> None:
    """Validation mAP and Rank-1 per epoch, one line per version."""
    fig = Figure(figsize=(12, 4.5))
    axes = fig.subplots(1, 2, sharex=True)
    styles = ('-', '--', '-.', ':')
    for ax, metric, title in zip(axes, ('mAP', 'rank1'), ('validation mAP', 'validation Rank-1')):
        drawn = False
        for i, r in enumerate(records):
            if metric in r.curve and not r.curve.empty:
                ax.plot(
                    r.curve['epoch'],
                    r.curve[metric],
                    linestyle=styles[i % len(styles)],
                    marker='o',
                    ms=3,
                    label=r.name,
                )
                drawn = True
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(f'{name}: {title}')
        ax.set_xlabel('epoch')
        ax.set_ylabel(f'{title.split()[1]} (%)')
        ax.grid(alpha=0.3)
        if drawn:
            ax.legend(fontsize=8, ncol=2)
        else:
            ax.text(0.5, 0.5, 'no validation records', ha='center', transform=ax.transAxes)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def plot_final_scores(records: list[VersionRecord], path: Path, name: str) -> None:
    """Test Rank-1 and mAP per version (versions without a result are labelled, no bar)."""
    fig = Figure(figsize=(max(6.0, 0.8 * len(records) + 2), 4.5))
    ax = fig.subplots()
    xs = range(len(records))
    width = 0.38
    for shift, metric, label in ((-width / 2, 'rank1', 'Rank-1'), (width / 2, 'mAP', 'mAP')):
        values = [r.score(metric) for r in records]
        bars = ax.bar(
            [x + shift for x in xs],
            [v if v is not None else 0.0 for v in values],
            width,
            label=label,
        )
        for bar, v in zip(bars, values):
            if v is not None:
                ax.annotate(
                    f'{v:.1f}',
                    (bar.get_x() + bar.get_width() / 2, v),
                    ha='center',
                    va='bottom',
                    fontsize=7,
                )
    for x, r in zip(xs, records):
        if r.test is None:
            ax.annotate(r.status, (x, 1), ha='center', va='bottom', rotation=90, fontsize=8)
    ax.set_xticks(list(xs), [r.name for r in records])
    ax.set_ylabel('test score (%)')
    ax.set_title(f'{name}: final test scores per version')
    ax.legend()
    ax.grid(axis='y', alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def write_artefacts(
    configs_dir: str | Path,
    work_root: str | Path,
    out_dir: str | Path = 'result_logs',
    name: str | None = None,
) -> dict[str, Path]:
    """Write the chronology's CSVs, markdown table and plots; returns their paths by kind."""
    name = name or Path(configs_dir).resolve().name
    records = collect(configs_dir, work_root)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        'remarks': out / f'stage3_{name}_remarks.csv',
        'results': out / f'stage3_{name}_results.csv',
        'table': out / f'stage3_{name}_chronology.md',
        'val_curves': out / f'stage3_{name}_val_curves.png',
        'final_scores': out / f'stage3_{name}_final_scores.png',
    }
    remarks_frame(records).to_csv(paths['remarks'], index=False)
    results_frame(records).to_csv(paths['results'], index=False)
    paths['table'].write_text(chronology_markdown(records, name), encoding='utf-8')
    plot_val_curves(records, paths['val_curves'], name)
    plot_final_scores(records, paths['final_scores'], name)
    return paths
