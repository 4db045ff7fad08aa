"""What every benchmark shares: figures (table rows), interleaved timing, the machine, the table.

A figure is a measured value or a ratio against a baseline measured in the same process. The two
sides of a ratio are interleaved (A then B, then B then A, ...) so that drift and the other
processes on a shared machine weigh on both alike; each side's value is the median over rounds and
a ratio is the median of the per-round ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from mmengine.device import get_device
from tabulate import tabulate

from promptsg.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]
COLUMNS = ('bench', 'case', 'figure', 'value', 'unit', 'note')
MODES = ('smoke', 'quick', 'full')
#: Intra-op threads unless ``--threads`` says otherwise: on a shared machine, threads that wait
#: on each other at every small op make timings ten times slower and far noisier.
DEFAULT_THREADS = 1


def figure(bench: str, case: str, name: str, value: float, unit: str = '', note: str = '') -> dict:
    """One row of the table: ``{'bench', 'case', 'figure', 'value', 'unit', 'note'}``."""
    return dict(bench=bench, case=case, figure=name, value=float(value), unit=unit, note=note)


def sync(device: torch.device) -> None:
    """Wait for queued GPU work so that a wall-clock reading covers it (no-op on CPU)."""
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def interleaved(
    variants: dict[str, Callable[[], object]],
    repeats: int,
    warmup: int = 1,
    inner: int = 1,
    device: torch.device | str = 'cpu',
) -> dict[str, list[float]]:
    """Seconds per call of each variant, one sample per round.

    ``warmup + repeats`` rounds; a round times ``inner`` back-to-back calls of every variant, in
    the given order on even rounds and reversed on odd ones (A B, B A, ...). Warm-up rounds are
    dropped.
    """
    if repeats < 1 or warmup < 0 or inner < 1:
        raise ConfigError(
            f'timing needs repeats >= 1, warmup >= 0 and inner >= 1; got {repeats}, '
            f'{warmup}, {inner}'
        )
    device = torch.device(device)
    names = list(variants)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for round_idx in range(warmup + repeats):
        for name in names if round_idx % 2 == 0 else names[::-1]:
            sync(device)
            start = time.perf_counter()
            for _ in range(inner):
                variants[name]()
            sync(device)
            if round_idx >= warmup:
                samples[name].append((time.perf_counter() - start) / inner)
    return samples


def spread(samples: Sequence[float], scale: float = 1.0, digits: int = 1) -> str:
    """``'median of n, IQR a-b'`` of ``samples`` (times ``scale``)."""
    values = sorted(v * scale for v in samples)
    if len(values) < 2:
        return f'1 sample (median of {len(values)})'
    q1, _, q3 = statistics.quantiles(values, n=4, method='inclusive')
    return f'median of {len(values)}, IQR {q1:.{digits}f}-{q3:.{digits}f}'


def time_figure(bench: str, case: str, name: str, samples: Sequence[float], note: str = '') -> dict:
    """Median of ``samples`` (seconds) as a figure in milliseconds, with its spread."""
    text = spread(samples, 1e3) + (f'; {note}' if note else '')
    return figure(bench, case, name, 1e3 * statistics.median(samples), 'ms', text)


def paired_ratio(numerator: Sequence[float], denominator: Sequence[float]) -> list[float]:
    """Per-round ratios of two interleaved sample lists of equal length."""
    if len(numerator) != len(denominator) or not numerator:
        raise ValueError('paired ratios need two non-empty sample lists of equal length')
    return [a / b for a, b in zip(numerator, denominator)]


def ratio_figure(bench: str, case: str, name: str, ratios: Sequence[float], note: str = '') -> dict:
    """Median of per-round ratios as a figure (unit ``x``), with its spread."""
    text = spread(ratios, 1.0, 3) + (f'; {note}' if note else '')
    return figure(bench, case, name, statistics.median(ratios), 'x', text)


def _cpu_model() -> str:
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _mem_total_gib() -> float | None:
    try:
        with open('/proc/meminfo') as f:
            for line in f:
                if line.startswith('MemTotal:'):
                    return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return None


def status_kib(field: str) -> int:
    """A ``/proc/self/status`` field (e.g. 'VmHWM', 'VmRSS') in KiB; 0 where /proc is absent."""
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith(f'{field}:'):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def reset_peak_rss() -> bool:
    """Reset ``VmHWM`` to the current resident set (Linux >= 4.0); False where not possible."""
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
    except OSError:
        return False
    return True


def cpu_count() -> int:
    """CPU cores this process may run on."""
    if hasattr(os, 'sched_getaffinity'):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def machine(device: torch.device | str = 'cpu', threads: int | None = None) -> str:
    """One line describing the machine: CPU, cores, memory, load, torch (with ``threads``, by
    default this process's CPU threads), and the GPU if used."""
    device = torch.device(device)
    threads = threads or torch.get_num_threads()
    parts = [_cpu_model(), f'{cpu_count()} cores']
    mem = _mem_total_gib()
    if mem is not None:
        parts.append(f'{mem:.0f} GiB RAM')
    if hasattr(os, 'getloadavg'):
        parts.append('load avg {:.1f}/{:.1f}/{:.1f}'.format(*os.getloadavg()))
    parts.append(f'torch {torch.__version__} ({threads} CPU threads)')
    parts.append(f'Python {platform.python_version()}')
    if device.type == 'cuda' and torch.cuda.is_available():
        props = torch.cuda.get_device_properties(device)
        parts.append(
            f'GPU {props.name} ({props.total_memory / 2**30:.0f} GiB, CUDA {torch.version.cuda})'
        )
    return ', '.join(parts)


def _fmt(value: float) -> str:
    if value != value or value in (float('inf'), float('-inf')):
        return str(value)
    magnitude = abs(value)
    if magnitude >= 1000:
        return f'{value:.0f}'
    if magnitude >= 10:
        return f'{value:.1f}'
    if magnitude >= 1 or magnitude == 0:
        return f'{value:.3f}'
    return f'{value:.4g}'


def _cell(text: str) -> str:
    return str(text).replace('|', '\\|')  # the table is also Markdown


def format_table(rows: Sequence[dict]) -> str:
    """The figures as one table (tabulate, GitHub Markdown), in the order given."""
    body = [
        [_cell(r['bench']), _cell(r['case']), _cell(r['figure'])]
        + [_fmt(r['value']), _cell(r['unit']), _cell(r['note'])]
        for r in rows
    ]
    return tabulate(body, headers=COLUMNS, tablefmt='github', disable_numparse=True)


def add_common_args(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Options every bench script takes: the mode, the device, the JSON output, CPU threads."""
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument('--quick', action='store_true', help='small CPU settings (about a minute)')
    mode.add_argument(
        '--smoke', action='store_true', help='smallest settings (seconds; used by the tests)'
    )
    parser.add_argument('--device', default='cpu', help='cpu, cuda or cuda:N (default: cpu)')
    parser.add_argument('--json', metavar='PATH', help='also write the figures to this JSON file')
    parser.add_argument(
        '--threads',
        type=int,
        help=f'torch intra-op CPU threads (CPU runs: default {DEFAULT_THREADS}, stable when shared)',
    )
    return parser


def mode_of(args: argparse.Namespace) -> str:
    """'smoke', 'quick' or 'full' from the parsed options."""
    return 'smoke' if args.smoke else 'quick' if args.quick else 'full'


def settings(args: argparse.Namespace, defaults: dict[str, dict]) -> dict:
    """The mode's defaults, overridden by every option given on the command line (not None)."""
    chosen = dict(defaults[mode_of(args)])
    for key in chosen:
        value = getattr(args, key, None)
        if value is not None:
            chosen[key] = value
    return chosen


def device_of(args: argparse.Namespace) -> torch.device:
    """The ``--device`` as a torch device; CUDA asked for but absent is a ConfigError.

    Sets torch's CPU threads to ``--threads``, or on CPU runs to :data:`DEFAULT_THREADS`.
    """
    try:
        device = torch.device(args.device)
    except RuntimeError as err:
        raise ConfigError(f"--device '{args.device}' is not a device; use cpu or cuda[:N]") from err
    if device.type not in ('cpu', 'cuda'):
        raise ConfigError(f"--device '{args.device}' is not supported; use cpu or cuda[:N]")
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise ConfigError(f"--device '{args.device}': CUDA is not available on this machine")
    if args.threads or device.type == 'cpu':
        torch.set_num_threads(args.threads or DEFAULT_THREADS)
    return device


def check_runner_device(device: torch.device) -> None:
    """The Runner picks its own device (CUDA whenever available): ``device`` must agree."""
    runner_device = torch.device(get_device())
    if runner_device.type != device.type:
        raise ConfigError(
            f"--device '{device}' differs from the Runner's device '{runner_device}' "
            '(the Runner runs on CUDA whenever it is available)'
        )


def report(title: str, rows: Sequence[dict], device: torch.device, json_path: str | None) -> None:
    """Print the title, the machine and the table; write ``{'machine', 'command', 'figures'}``."""
    desc = machine(device)
    print(f'\n{title}\nmachine: {desc}\n')
    print(format_table(rows))
    if json_path:
        payload = dict(machine=desc, command=' '.join(sys.argv), figures=list(rows))
        Path(json_path).write_text(json.dumps(payload, indent=1))
