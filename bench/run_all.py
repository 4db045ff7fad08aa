"""Run every benchmark and print one table of every figure with the machine's description.

    python bench/run_all.py --quick      # small CPU settings: minutes on 2 cores
    python bench/run_all.py              # the full CPU settings
    python bench/run_all.py --device cuda --amp --archs ViT-B-16 RN50 --batch-size 64 \\
        --only train_overhead train_memory eval_device      # what bench/gpu_check.sh runs

Each bench runs in its own process and hands its figures back as JSON, so that one bench's
memory, threads and registrations cannot leak into the next; a bench that fails or runs past
``--timeout`` shows as a row saying why, and the others still run (the exit status is then 1).
``bench/eval_speed.py`` (the evaluation protocol's benchmark) is collected from its JSON when it
writes one, else from its printed table.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.harness import (  # noqa: E402
    DEFAULT_THREADS,
    REPO,
    figure,
    format_table,
    machine,
    mode_of,
)

BENCH_DIR = REPO / 'bench'
#: Our benches, in running order, and the shared options each one takes.
BENCHES = {
    'train_overhead': ('archs', 'batch_size', 'img_size', 'amp'),
    'promptsg_vs_baseline': ('archs', 'batch_size', 'img_size', 'amp'),
    'extract_speed': ('archs', 'batch_size', 'img_size', 'amp'),
    'train_memory': ('archs', 'batch_sizes', 'img_size', 'amp'),
    'eval_device': (),
}
#: Benches written elsewhere, collected from their JSON or printed table.
FOREIGN = ('eval_speed',)
ALL = (*BENCHES, *FOREIGN)
#: ``eval_speed.py`` sizes used by ``--smoke`` when it has no smoke mode of its own.
SMOKE_EVAL_SIZES = '300x1500'
_DASHES = re.compile(r'^\s*-+(\s+-+)+\s*$')


def parse_table(text: str) -> list[dict[str, str]]:
    """Rows (header → cell text) of the first tabulate 'simple' table in ``text``.

    Column bounds come from the run of dashes under each header, so cells may hold spaces.
    """
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if i == 0 or not _DASHES.match(line):
            continue
        starts = [m.start() for m in re.finditer(r'-+', line)]
        headers = _cells(lines[i - 1], starts)
        rows = []
        for row in lines[i + 1 :]:
            if not row.strip() or _DASHES.match(row):
                break
            rows.append(dict(zip(headers, _cells(row, starts))))
        return rows
    return []


def _cells(row: str, starts: list[int]) -> list[str]:
    ends = [*starts[1:], max(len(row), starts[-1])]
    return [row[a:b].strip() for a, b in zip(starts, ends)]


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def column_unit(header: str) -> str:
    """Unit of a foreign table's column from its header: 'wall s' → 's', 'peak MB' → 'MB'."""
    words = header.lower().replace('(', ' ').replace(')', ' ').split()
    if not words:
        return ''
    if words[-1] in ('s', 'sec', 'seconds') or words[0] == 'seconds':
        return 's'
    if words[-1] == 'ms':
        return 'ms'
    if 'mb' in words or 'mib' in words:
        return 'MB' if 'mb' in words else 'MiB'
    if words[0].startswith('speed') or words[-1] == 'x':
        return 'x'
    if header.endswith('%'):
        return '%'
    return ''


def table_figures(bench: str, rows: list[dict[str, str]]) -> list[dict]:
    """Figures of a parsed table: one per numeric cell.

    Numeric columns hold only numbers (or blanks); a ``note`` column becomes the note; the
    other columns label the row: all but the last form the case, the last names the figure.
    """
    if not rows:
        return []
    headers = list(rows[0])
    numeric = [
        h
        for h in headers
        if any(r[h] for r in rows) and all(not r[h] or _number(r[h]) is not None for r in rows)
    ]
    notes = [h for h in headers if h.lower() == 'note']
    labels = [h for h in headers if h not in numeric and h not in notes]
    out = []
    for row in rows:
        words = [row[h] for h in labels if row[h]]
        case = ' '.join(words[:-1]) or (words[0] if words else '')
        name = words[-1] if len(words) > 1 else ''
        note = '; '.join(row[h] for h in notes if row[h])
        for h in numeric:
            if row[h]:
                label = f'{name}: {h}' if name else h
                out.append(figure(bench, case, label, float(row[h]), column_unit(h), note))
    return out


def own_command(name: str, args: argparse.Namespace, json_path: str) -> list[str]:
    """Command line of one of our benches, with the options it takes."""
    cmd = [sys.executable, str(BENCH_DIR / f'{name}.py'), '--device', args.device]
    cmd += ['--json', json_path]
    cmd += {'smoke': ['--smoke'], 'quick': ['--quick'], 'full': []}[mode_of(args)]
    if args.threads:
        cmd += ['--threads', str(args.threads)]
    takes = BENCHES[name]
    if args.archs and 'archs' in takes:
        cmd += ['--archs', *args.archs]
    if args.batch_size and 'batch_size' in takes:
        cmd += ['--batch-size', str(args.batch_size)]
    if args.batch_size and 'batch_sizes' in takes:
        cmd += ['--batch-sizes', str(args.batch_size)]
    if args.img_size and 'img_size' in takes:
        cmd += ['--img-size', *map(str, args.img_size)]
    if args.amp and 'amp' in takes and (name != 'extract_speed' or args.device != 'cpu'):
        cmd += ['--amp']
    return cmd


def foreign_command(name: str, args: argparse.Namespace, json_path: str) -> list[str]:
    """Command line of a bench written elsewhere, from the options its ``--help`` lists."""
    script = BENCH_DIR / f'{name}.py'
    shown = subprocess.run(
        [sys.executable, str(script), '--help'], capture_output=True, text=True, cwd=REPO
    ).stdout
    cmd = [sys.executable, str(script)]
    mode = mode_of(args)
    if mode == 'smoke' and '--smoke' in shown:
        cmd.append('--smoke')
    elif mode == 'smoke' and '--sizes' in shown:
        cmd += ['--sizes', SMOKE_EVAL_SIZES]
    elif mode in ('smoke', 'quick') and '--quick' in shown:
        cmd.append('--quick')
    if '--threads' in shown:
        threads = args.threads or (DEFAULT_THREADS if args.device == 'cpu' else 0)
        cmd += ['--threads', str(threads)] if threads else []
    if '--device' in shown:
        cmd += ['--device', args.device]
    if '--json' in shown:
        cmd += ['--json', json_path]
    return cmd


def run_bench(name: str, args: argparse.Namespace) -> tuple[list[dict], str, float]:
    """Run one bench; returns its figures, a status word ('ok' or why not) and its wall time."""
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix='promptsg_bench_') as tmp:
        json_path = str(Path(tmp) / f'{name}.json')
        if name in BENCHES:
            cmd = own_command(name, args, json_path)
        else:
            cmd = foreign_command(name, args, json_path)
        print(f'[run_all] {name}: {" ".join(cmd[1:])}', flush=True)
        try:
            proc = subprocess.run(
                cmd, capture_output=True, text=True, cwd=REPO, timeout=args.timeout
            )
        except subprocess.TimeoutExpired:
            return [], f'timed out after {args.timeout:.0f} s', time.perf_counter() - start
        seconds = time.perf_counter() - start
        if proc.returncode:
            lines = (proc.stderr or proc.stdout).strip().splitlines() or ['no output']
            return [], f'failed (exit {proc.returncode}): {lines[-1][:160]}', seconds
        if os.path.isfile(json_path):
            figures = json.loads(Path(json_path).read_text())['figures']
        else:
            figures = table_figures(name, parse_table(proc.stdout))
    if not figures:
        return [], 'printed no figures', seconds
    return figures, 'ok', seconds


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument('--quick', action='store_true', help='small CPU settings (minutes)')
    mode.add_argument('--smoke', action='store_true', help='smallest settings (for the tests)')
    parser.add_argument('--device', default='cpu', help='cpu, cuda or cuda:N (default: cpu)')
    parser.add_argument('--amp', action='store_true', help='bf16 autocast where a bench has it')
    parser.add_argument('--archs', nargs='+', help='CLIP archs for the model benches')
    parser.add_argument('--batch-size', type=int, help='batch size for the model benches')
    parser.add_argument('--img-size', type=int, nargs=2, metavar=('H', 'W'), help='input size')
    parser.add_argument('--threads', type=int, help='torch CPU threads in every bench')
    parser.add_argument('--only', nargs='+', choices=ALL, metavar='BENCH', help=f'of {ALL}')
    parser.add_argument('--skip', nargs='+', choices=ALL, default=[], metavar='BENCH')
    parser.add_argument('--timeout', type=float, default=900.0, help='seconds per bench')
    parser.add_argument('--json', metavar='PATH', help='also write every figure to this file')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    names = [n for n in (args.only or ALL) if n not in args.skip]
    names = [n for n in names if n in BENCHES or (BENCH_DIR / f'{n}.py').is_file()]
    started = datetime.now(timezone.utc)
    load_start = os.getloadavg() if hasattr(os, 'getloadavg') else None
    figures, failed, total = [], [], time.perf_counter()
    for name in names:
        got, status, seconds = run_bench(name, args)
        figures += got
        figures.append(figure('run_all', name, 'bench wall time', seconds, 's', status))
        if status != 'ok':
            failed.append(name)
    total = time.perf_counter() - total
    figures.append(figure('run_all', 'all', 'total wall time', total, 's'))
    command = 'python bench/run_all.py ' + ' '.join(sys.argv[1:] if argv is None else argv)
    desc = machine(args.device, args.threads or (DEFAULT_THREADS if args.device == 'cpu' else None))
    print(f'\npromptsg benchmarks, {started:%Y-%m-%d %H:%M} UTC')
    print(f'command: {command.strip()}')
    print(f'machine: {desc}')
    if load_start is not None:
        print(
            f'load average at the start {load_start[0]:.1f}, at the end '
            f'{os.getloadavg()[0]:.1f}: other processes share the machine; each ratio is '
            'measured interleaved in one process'
        )
    print()
    print(format_table(figures))
    if failed:
        print(f'\nfailed: {", ".join(failed)}')
    if args.json:
        payload = dict(machine=desc, command=command, date=started.isoformat(), figures=figures)
        Path(args.json).write_text(json.dumps(payload, indent=1))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
