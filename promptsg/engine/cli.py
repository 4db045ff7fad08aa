"""Command-line plumbing: user errors become one line on stderr and exit status 2."""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable

from mmengine.config import DictAction

from promptsg.errors import PromptSGError

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


def run_cli(main: Callable[[], object]) -> None:
    """Call ``main``; report a :class:`PromptSGError` (or a config argument typo) in one line.

    After a successful multi-process run the ranks meet at a barrier and close their process
    group, so that no rank tears down its communication threads while another still uses them.
    """
    try:
        main()
        close_distributed()
    except PromptSGError as e:
        _fail(f'error: {e}')
    except TypeError as e:
        m = _BAD_KWARG.search(str(e))
        if m is None:
            raise
        _fail(f"error: {m.group(1)} has no argument '{m.group(2)}' (check the config)")


def close_distributed() -> None:
    """Barrier, then ``destroy_process_group``, when a default process group is up.

    Without it a gloo rank that finishes first can abort at interpreter exit ("terminate called
    without an active exception"), and the launcher then reports the whole run as failed.
    """
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def _fail(message: str) -> None:
    print(' '.join(message.split()), file=sys.stderr)
    sys.exit(2)
