"""Peak memory of one PromptSG training step, per backbone and batch size.

    python bench/train_memory.py --quick
    python bench/train_memory.py --device cuda --amp --archs ViT-B-16 RN50 --batch-sizes 64

Each case runs in a fresh subprocess (so one case's peak cannot hide another's): it builds the
model and a P×K batch, then takes one hand-written training step (:class:`HandLoop`, AdamW, whose
state is created in that step). CPU: the process's peak resident set (``VmHWM``, reset just before
the step through ``/proc/self/clear_refs`` so that building the model does not count) and the
step's rise above the resident set just before it. GPU: ``torch.cuda.max_memory_allocated`` over the
step and the memory allocated before it (weights).
"""

from __future__ import annotations

import argparse
import json
import os.path as osp
import subprocess
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import torch  # noqa: E402

from bench.hand_loop import HandLoop, adamw  # noqa: E402
from bench.harness import (  # noqa: E402
    REPO,
    add_common_args,
    device_of,
    figure,
    report,
    reset_peak_rss,
    settings,
    status_kib,
    sync,
)
from bench.workloads import build_model, case_name, synthetic_batch  # noqa: E402
from promptsg.engine.cli import run_cli  # noqa: E402

BENCH = 'train_memory'
MARKER = 'TRAIN_MEMORY '
DEFAULTS = {
    'smoke': dict(archs=['tiny-vit'], batch_sizes=[4, 8], img_size=[64, 32]),
    'quick': dict(archs=['tiny-vit', 'tiny-rn'], batch_sizes=[16, 64], img_size=[256, 128]),
    'full': dict(
        archs=['tiny-vit', 'tiny-rn', 'ViT-B-16', 'RN50'],
        batch_sizes=[8, 32],
        img_size=[256, 128],
    ),
}


def one_step(
    arch: str, batch_size: int, img_size: tuple[int, int], device: torch.device, amp: bool
) -> dict:
    """Build, take one training step, return the memory readings in MiB."""
    batch = synthetic_batch(batch_size, img_size)
    model = build_model('promptsg', arch, img_size, device)
    step = HandLoop(model, adamw(model), batch, amp_dtype=torch.bfloat16 if amp else None)
    if device.type == 'cuda':
        sync(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        step()
        sync(device)
        return dict(
            before=before / 2**20,
            peak=torch.cuda.max_memory_allocated(device) / 2**20,
            reserved=torch.cuda.max_memory_reserved(device) / 2**20,
        )
    reset = reset_peak_rss()
    before = status_kib('VmRSS')
    step()
    return dict(
        before=before / 1024,
        peak=status_kib('VmHWM') / 1024,
        reset=reset,
    )


def run_case(
    arch: str, batch_size: int, img_size: tuple[int, int], args: argparse.Namespace
) -> dict:
    """Run :func:`one_step` in a fresh Python and read its readings."""
    cmd = [sys.executable, str(REPO / 'bench' / 'train_memory.py'), '--child']
    cmd += ['--archs', arch, '--batch-sizes', str(batch_size)]
    cmd += ['--img-size', *map(str, img_size), '--device', args.device]
    cmd += ['--amp'] if args.amp else []
    cmd += ['--threads', str(args.threads)] if args.threads else []
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(MARKER)]
    if proc.returncode or not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ['no output']
        raise RuntimeError(f'memory case {arch} b{batch_size} failed: {tail[0]}')
    return json.loads(lines[-1][len(MARKER) :])


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
    add_common_args(parser)
    parser.add_argument('--archs', nargs='+', help='CLIP archs (tiny-vit, tiny-rn, ViT-B-16, RN50)')
    parser.add_argument('--batch-sizes', type=int, nargs='+', help='batch sizes (multiples of 4)')
    parser.add_argument('--img-size', type=int, nargs=2, metavar=('H', 'W'), help='input size')
    parser.add_argument('--amp', action='store_true', help='bf16 autocast')
    parser.add_argument('--child', action='store_true', help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv=None) -> list[dict]:
    args = parse_args(argv)
    device = device_of(args)
    opts = settings(args, DEFAULTS)
    img_size = tuple(opts['img_size'])
    if args.child:
        readings = one_step(opts['archs'][0], opts['batch_sizes'][0], img_size, device, args.amp)
        print(MARKER + json.dumps(readings), flush=True)
        return []
    rows = []
    for arch in opts['archs']:
        for batch_size in opts['batch_sizes']:
            got = run_case(arch, batch_size, img_size, args)
            case = case_name(arch, batch_size, img_size, args.amp)
            if device.type == 'cuda':
                rows += [
                    figure(BENCH, case, 'peak GPU memory allocated, one step', got['peak'], 'MiB'),
                    figure(BENCH, case, 'GPU memory before the step', got['before'], 'MiB'),
                    figure(BENCH, case, 'peak GPU memory reserved', got['reserved'], 'MiB'),
                ]
            else:
                how = 'peak reset before the step' if got['reset'] else 'peak not resettable'
                rows += [
                    figure(
                        BENCH,
                        case,
                        'peak resident memory, one step',
                        got['peak'],
                        'MiB',
                        f'VmHWM, whole process; {how}',
                    ),
                    figure(
                        BENCH,
                        case,
                        'rise during the step',
                        got['peak'] - got['before'],
                        'MiB',
                        'VmHWM after the step - VmRSS before it',
                    ),
                ]
    report('Peak memory of one training step', rows, device, args.json)
    return rows


if __name__ == '__main__':
    run_cli(main)
