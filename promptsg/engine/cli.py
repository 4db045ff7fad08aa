"""Command-line plumbing for every tool: shared options, and user errors as one line on stderr
with exit status 2."""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from mmengine.config import DictAction

from promptsg.errors import PromptSGError

if TYPE_CHECKING:
    from promptsg.apis.inferencer import ReIDInferencer

#: ``TypeError`` text of a component given an argument it does not take.
_BAD_KWARG = re.compile(r"(\w+)\.__init__\(\) got an unexpected keyword argument '(\w+)'")


def add_run_args(parser: argparse.ArgumentParser) -> None:
    """The options every run tool shares: paths, ``--cfg-options`` and the launcher."""
    parser.add_argument('--data-root', help="set every data loader's dataset.data_root")
    parser.add_argument(
        '--pretrained', help='CLIP weights: an open_clip tag or a local .pt/.bin/.safetensors file'
    )
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config keys')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher',
    )
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def add_inferencer_args(parser: argparse.ArgumentParser) -> None:
    """Config, checkpoint and the :class:`ReIDInferencer` options."""
    from promptsg.apis.inferencer import PROMPTS

    parser.add_argument('config', help='config file the checkpoint was trained with')
    parser.add_argument(
        'checkpoint',
        help='checkpoint file (e.g. work_dirs/vit_b16/v6/best_*.pth), or a training work dir: its best '
        'checkpoint is used, as by tools/test.py',
    )
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
    parser.add_argument(
        '--camid',
        type=int,
        help='camera id that a model with SIE (a camera embedding) adds for images whose camera '
        'their name or list does not give (Market-style c1 = 0); ignored by other models',
    )
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config keys')


def build_inferencer(args: argparse.Namespace) -> ReIDInferencer:
    """The inferencer the parsed options describe; says on stderr which checkpoint a work dir
    resolved to, and where a ``None`` ``model.num_classes`` was taken from."""
    from promptsg.apis.inferencer import ReIDInferencer

    inferencer = ReIDInferencer(
        args.config,
        args.checkpoint,
        device=args.device,
        prompt=args.prompt,
        aspect=args.aspect,
        batch_size=args.batch_size,
        num_workers=args.num_workers,
        cfg_options=args.cfg_options,
    )
    if inferencer.checkpoint and inferencer.checkpoint != args.checkpoint:
        print(f'checkpoint: {inferencer.checkpoint}', file=sys.stderr)
    if inferencer.num_classes_from:
        print(
            f'model.num_classes = {inferencer.cfg.model.num_classes} '
            f'(from {inferencer.num_classes_from})',
            file=sys.stderr,
        )
    return inferencer


def run_cli(main: Callable[[], object]) -> None:
    """Call ``main``; report a :class:`PromptSGError` (or a config argument typo) in one line.

    After a successful multi-process run the ranks meet at a barrier and close their process
    group, so that no rank tears down its communication threads while another still uses them.
    """
    try:
        main()
        close_distributed()
    except PromptSGError as e:
        _fail(f'error: {_worker_cause(str(e))}')
    except KeyboardInterrupt:
        _fail('error: interrupted (Ctrl-C)')
    except BrokenPipeError:  # the reader went away (``tool | head``): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
    except KeyError as e:
        text = str(e.args[0]) if e.args else ''
        if _NO_TYPE not in text:
            raise
        shown = text.split('but got ', 1)[-1].split('\n')[0]
        shown = shown if len(shown) <= 160 else shown[:157] + '...'
        _fail(
            f"error: a component config has no 'type' key: {shown} (name the component, e.g. "
            "type='LinearClassifier')"
        )
    except TypeError as e:
        m = _BAD_KWARG.search(str(e))
        if m is None:
            raise
        _fail(f"error: {m.group(1)} has no argument '{m.group(2)}' (check the config)")


#: mmengine's message for a component dict without ``type``.
_NO_TYPE = 'must contain the key "type"'
#: The last line of a traceback that torch's data loader copied from a worker.
_RAISED = re.compile(r'^(?:[\w.]+\.)?\w+: (.+)$')


def _worker_cause(text: str) -> str:
    """The error itself, not the data-loader worker traceback torch wraps it in."""
    if 'Original Traceback' not in text:
        return text
    last = [line for line in text.strip().splitlines() if line.strip()][-1].strip()
    m = _RAISED.match(last)
    worker = re.search(r'DataLoader worker process \d+', text)
    where = f' (in {worker.group(0)})' if worker else ''
    return (m.group(1) if m else last) + where


def close_distributed() -> None:
    """Barrier, then ``destroy_process_group``, when a default process group is up.

    Without it a gloo rank that finishes first can abort at interpreter exit ("terminate called
    without an active exception"), and the launcher then reports the whole run as failed. The
    abort still happened now and then at interpreter teardown (1 run in 3 of a loaded CI), so a
    rank started by a launcher (torchrun, slurm) leaves through ``os._exit(0)`` once its logs
    are flushed: the run's work is done and written by then.
    """
    import logging

    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
        if os.environ.get('TORCHELASTIC_RUN_ID') or os.environ.get('SLURM_PROCID'):
            logging.shutdown()
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)


def _fail(message: str) -> None:
    print(' '.join(message.split()), file=sys.stderr)
    sys.exit(2)
