"""Command-line options shared by the inference tools (``tools/extract.py``, ``tools/search.py``)."""

from __future__ import annotations

import argparse

from promptsg.apis.inferencer import PROMPTS, ReIDInferencer
from promptsg.engine.runner import DictAction


def add_inferencer_args(parser: argparse.ArgumentParser) -> None:
    """Config, checkpoint and the :class:`ReIDInferencer` options."""
    parser.add_argument('config', help='config file the checkpoint was trained with')
    parser.add_argument('checkpoint', help='checkpoint file (e.g. work_dirs/v6/best_*.pth)')
    parser.add_argument('--device', default='cpu', help="'cpu', 'cuda' or 'cuda:N'")
    parser.add_argument(
        '--prompt',
        choices=PROMPTS,
        default='fixed',
        help='PromptSG inference prompt: fixed (cached, faster) or composed (s* per image)',
    )
    parser.add_argument('--aspect', default='', help="words for a template's {aspect} slot")
    parser.add_argument('--batch-size', type=int, default=64, help='images per forward pass')
    parser.add_argument('--num-workers', type=int, default=0, help='image-loading processes')
    parser.add_argument('--no-progress', action='store_true', help='hide the progress bar')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config keys')


def build_inferencer(args: argparse.Namespace) -> ReIDInferencer:
    """The inferencer the parsed options describe."""
    return ReIDInferencer(
        args.config,
        args.checkpoint,
        device=args.device,
        prompt=args.prompt,
        aspect=args.aspect,
        batch_size=args.batch_size,
        num_workers=args.num_workers,
        cfg_options=args.cfg_options,
    )
