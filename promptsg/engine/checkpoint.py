"""Loading checkpoints safely under torch >= 2.6.

mmengine 0.10.7 calls ``torch.load`` without ``weights_only``; torch >= 2.6 defaults to
``weights_only=True`` and refuses the ``HistoryBuffer`` and NumPy objects mmengine itself stores in
a checkpoint, so ``load_from``, ``--resume`` and ``tools/test.py`` fail. We keep torch's safe
unpickler and allow-list exactly the types mmengine writes (no arbitrary code can run while a
checkpoint loads), by replacing mmengine's loader for local paths. Importing
:mod:`promptsg.engine` installs it.
"""

from __future__ import annotations

import os
import pickle
import re

import numpy as np
import torch
from mmengine.logging import HistoryBuffer
from mmengine.runner.checkpoint import CheckpointLoader

from promptsg.errors import CheckpointError


def _numpy_globals() -> list:
    """NumPy reconstructors and dtypes that pickles of arrays and scalars reference."""
    try:
        from numpy._core.multiarray import _reconstruct, scalar
    except ImportError:  # NumPy < 2
        from numpy.core.multiarray import _reconstruct, scalar
    dtypes = [type(np.dtype(t)) for t in ('f2', 'f4', 'f8', 'i1', 'i2', 'i4', 'i8', 'u1', 'b1')]
    return [_reconstruct, scalar, np.ndarray, np.dtype, *dtypes]


#: Types a promptsg/mmengine checkpoint may contain besides tensors and builtins.
SAFE_GLOBALS = [HistoryBuffer, *_numpy_globals()]


def load_checkpoint_file(filename: str, map_location=None) -> dict:
    """``torch.load`` a local checkpoint with ``weights_only=True`` and mmengine's types allowed.

    Raises:
        CheckpointError: the file is missing, truncated, not a checkpoint, or holds a type
            outside :data:`SAFE_GLOBALS`.
    """
    filename = os.path.expanduser(filename)
    if not os.path.isfile(filename):
        raise CheckpointError(f'checkpoint not found: {filename}')
    try:
        with torch.serialization.safe_globals(SAFE_GLOBALS):
            return torch.load(filename, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        m = re.search(r'Unsupported global: GLOBAL (\S+)', str(e))
        what = f'it holds {m.group(1)}, which is not allow-listed' if m else str(e).splitlines()[0]
        raise CheckpointError(
            f'cannot load checkpoint {filename} safely: {what} (see promptsg.engine.checkpoint)'
        ) from e
    except (RuntimeError, EOFError, OSError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(
            f'cannot load checkpoint {filename} (truncated or not a torch file?): {first}'
        ) from e


def install_checkpoint_loader() -> None:
    """Make mmengine load local checkpoints with :func:`load_checkpoint_file`."""
    CheckpointLoader.register_scheme(prefixes='', loader=load_checkpoint_file, force=True)
