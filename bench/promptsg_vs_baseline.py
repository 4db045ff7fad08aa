"""PromptSG's cost: training iteration vs the plain baseline, composed vs fixed-prompt inference.

    python bench/promptsg_vs_baseline.py --quick

Training: the quick-start PromptSG and the foundation's ``ReIDBaseline`` (same backbone, BNNeck
and classifier; CE + triplet) each take hand-written training steps (:class:`HandLoop`, AdamW,
clip 5) on the same P×K batch, interleaved. Inference: the PromptSG model in eval mode embeds
the same batch with the composed prompt (inversion → text encoder per image) and with the
fixed prompt (text feature computed once and cached), interleaved. The paper reports the fixed
prompt about 1.8× faster at inference.
"""

from __future__ import annotations

import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import torch  # noqa: E402

from bench.hand_loop import HandLoop, adamw  # noqa: E402
from bench.harness import (  # noqa: E402
    add_common_args,
    device_of,
    interleaved,
    paired_ratio,
    ratio_figure,
    report,
    settings,
    time_figure,
)
from bench.workloads import build_model, case_name, synthetic_batch  # noqa: E402
from promptsg.engine.cli import run_cli  # noqa: E402

BENCH = 'promptsg_vs_baseline'
DEFAULTS = {
    'smoke': dict(
        archs=['tiny-vit'], batch_size=8, img_size=[64, 32], repeats=2, warmup=1, inner=1
    ),
    'quick': dict(
        archs=['tiny-vit'], batch_size=32, img_size=[256, 128], repeats=10, warmup=2, inner=2
    ),
    'full': dict(
        archs=['tiny-vit', 'tiny-rn'],
        batch_size=32,
        img_size=[256, 128],
        repeats=20,
        warmup=2,
        inner=3,
    ),
}


def _embedder(model, inputs: torch.Tensor, prompt: str, amp_dtype: torch.dtype | None):
    """A call that embeds ``inputs`` (B, 3, H, W) with the given test-time prompt."""

    def embed() -> torch.Tensor:
        model.test_cfg['prompt'] = prompt
        with (
            torch.no_grad(),
            torch.autocast(inputs.device.type, dtype=amp_dtype, enabled=amp_dtype is not None),
        ):
            return model.embed(inputs)

    return embed


def measure(
    arch: str,
    batch_size: int,
    img_size: tuple[int, int],
    repeats: int,
    warmup: int,
    inner: int,
    device: torch.device,
    amp: bool,
) -> list[dict]:
    """Time both models' training steps, then both inference prompts; return the figures."""
    amp_dtype = torch.bfloat16 if amp else None
    batch = synthetic_batch(batch_size, img_size)
    promptsg = build_model('promptsg', arch, img_size, device)
    baseline = build_model('baseline', arch, img_size, device)
    train = interleaved(
        {
            'promptsg': HandLoop(promptsg, adamw(promptsg), batch, amp_dtype=amp_dtype),
            'baseline': HandLoop(baseline, adamw(baseline), batch, amp_dtype=amp_dtype),
        },
        repeats,
        warmup,
        inner,
        device,
    )
    promptsg.eval()
    inputs = promptsg.data_preprocessor(batch, False)['inputs']
    infer = interleaved(
        {
            'composed': _embedder(promptsg, inputs, 'composed', amp_dtype),
            'fixed': _embedder(promptsg, inputs, 'fixed', amp_dtype),
        },
        repeats,
        warmup,
        inner,
        device,
    )
    case = case_name(arch, batch_size, img_size, amp)
    return [
        time_figure(BENCH, case, 'PromptSG training iteration', train['promptsg']),
        time_figure(BENCH, case, 'ReIDBaseline training iteration', train['baseline']),
        ratio_figure(
            BENCH,
            case,
            'training PromptSG / baseline',
            paired_ratio(train['promptsg'], train['baseline']),
        ),
        time_figure(BENCH, case, 'inference, composed prompt (per batch)', infer['composed']),
        time_figure(BENCH, case, 'inference, fixed prompt (per batch)', infer['fixed']),
        ratio_figure(
            BENCH,
            case,
            'inference composed / fixed',
            paired_ratio(infer['composed'], infer['fixed']),
            'paper: about 1.8',
        ),
    ]


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
    add_common_args(parser)
    parser.add_argument('--archs', nargs='+', help='CLIP archs (tiny-vit, tiny-rn, ViT-B-16, RN50)')
    parser.add_argument('--batch-size', type=int, help='images per batch (multiple of 4)')
    parser.add_argument('--img-size', type=int, nargs=2, metavar=('H', 'W'), help='input size')
    parser.add_argument('--repeats', type=int, help='timed rounds')
    parser.add_argument('--warmup', type=int, help='untimed rounds first')
    parser.add_argument('--inner', type=int, help='calls per round and side')
    parser.add_argument('--amp', action='store_true', help='bf16 autocast')
    return parser.parse_args(argv)


def main(argv=None) -> list[dict]:
    args = parse_args(argv)
    device = device_of(args)
    opts = settings(args, DEFAULTS)
    rows = []
    for arch in opts['archs']:
        rows += measure(
            arch,
            opts['batch_size'],
            tuple(opts['img_size']),
            opts['repeats'],
            opts['warmup'],
            opts['inner'],
            device,
            args.amp,
        )
    report('PromptSG vs ReIDBaseline, composed vs fixed prompt', rows, device, args.json)
    return rows


if __name__ == '__main__':
    run_cli(main)
