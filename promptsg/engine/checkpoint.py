"""Loading checkpoints safely under torch >= 2.6, checking they fit, and finding them.

mmengine 0.10.7 calls ``torch.load`` without ``weights_only``; torch >= 2.6 defaults to
``weights_only=True`` and refuses the ``HistoryBuffer`` and NumPy objects mmengine itself stores in
a checkpoint, so ``load_from``, ``--resume`` and ``tools/test.py`` fail. We keep torch's safe
unpickler and allow-list exactly the types mmengine writes (no arbitrary code can run while a
checkpoint loads), by replacing mmengine's loader for local paths. Importing
:mod:`promptsg.engine` installs it.

:func:`check_checkpoint_fits` turns mmengine's silent non-strict loading into one
``CheckpointError`` line naming the mismatched keys and the differing ``model.*`` config keys;
:func:`latest_checkpoint` and :func:`best_checkpoint` find what ``--resume`` and
``tools/test.py WORK_DIR`` use; :func:`resolve_checkpoint` is the rule every tool that takes a
checkpoint applies (a file, or a work dir's best checkpoint).
"""

from __future__ import annotations

import os
import pickle
import re
from collections.abc import Mapping

import numpy as np
import torch
from mmengine.config import Config
from mmengine.logging import HistoryBuffer
from mmengine.runner.checkpoint import CheckpointLoader
from torch import nn

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
        raise CheckpointError(
            f'cannot load checkpoint {filename} safely: {_unsafe_reason(str(e))}; nothing was '
            'loaded (only tensors and the types listed in promptsg.engine.checkpoint are read)'
        ) from e
    except (RuntimeError, EOFError, OSError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        first = first.split('. ')[0]
        raise CheckpointError(
            f'cannot load checkpoint {filename} (truncated or not a torch file?): {first}'
        ) from e


def _unsafe_reason(text: str) -> str:
    """What torch's safe unpickler refused, without torch's advice to load the file unsafely."""
    m = re.search(r'(?:Unsupported global: GLOBAL|unsupported GLOBAL) ([\w.]+)', text)
    if m:
        return f'it holds {m.group(1)}, which is not allow-listed (code, not weights)'
    m = re.search(r'Unsupported operand \d+|invalid load key[^\n]*', text)
    if m:
        return f'not a torch checkpoint (unreadable pickle data: {m.group(0).rstrip(".")})'
    return 'its contents are not tensors and allow-listed types'


def install_checkpoint_loader() -> None:
    """Make mmengine load local checkpoints with :func:`load_checkpoint_file`."""
    CheckpointLoader.register_scheme(prefixes='', loader=load_checkpoint_file, force=True)


def _flatten(tree, prefix: str = '') -> dict:
    """``{'a': {'b': 1}}`` -> ``{'a.b': 1}`` (lists and tuples are leaves)."""
    if not isinstance(tree, Mapping):
        return {prefix: tree}
    flat = {}
    for key, value in tree.items():
        flat.update(_flatten(value, f'{prefix}.{key}' if prefix else str(key)))
    return flat


def config_diff(old: Mapping, new: Mapping, prefix: str = 'model') -> list[str]:
    """Keys whose values differ between two config trees, as ``'key: old -> new'``."""
    a, b = _flatten(old, prefix), _flatten(new, prefix)
    missing = object()
    return [
        f'{key}: {a.get(key, "<unset>")!r} -> {b.get(key, "<unset>")!r}'
        for key in sorted(set(a) | set(b))
        if a.get(key, missing) != b.get(key, missing)
    ]


def checkpoint_model_cfg(checkpoint: Mapping) -> dict | None:
    """The ``model`` config stored in a checkpoint's ``meta['cfg']`` (None when absent)."""
    text = checkpoint.get('meta', {}).get('cfg') if isinstance(checkpoint, Mapping) else None
    if not text:
        return None
    try:
        cfg = Config.fromstring(text, file_format='.py')
    except Exception:  # a config that no longer parses (e.g. a plugin gone) is just not compared
        return None
    model = cfg.get('model')
    return model.to_dict() if hasattr(model, 'to_dict') else model


def _shorten(items: list[str], n: int = 6) -> str:
    return ', '.join(items[:n]) + (f' (+{len(items) - n} more)' if len(items) > n else '')


def state_dict_mismatch(model: nn.Module, state_dict: Mapping) -> dict[str, list[str]]:
    """Keys of ``state_dict`` that do not fit ``model``: ``missing``, ``unexpected``, ``shape``.

    A ``module.`` prefix (a DDP checkpoint) is ignored, as mmengine does when it loads.
    """
    own = model.state_dict()
    theirs = {re.sub(r'^module\.', '', k): v for k, v in state_dict.items()}
    shape = [
        f'{k} {tuple(theirs[k].shape)} in checkpoint vs {tuple(own[k].shape)} in model'
        for k in own
        if k in theirs
        and hasattr(theirs[k], 'shape')
        and tuple(theirs[k].shape) != tuple(own[k].shape)
    ]
    return {
        'missing': sorted(set(own) - set(theirs)),
        'unexpected': sorted(set(theirs) - set(own)),
        'shape': shape,
    }


def check_checkpoint_fits(
    model: nn.Module, checkpoint: Mapping, model_cfg: Mapping | None = None, name: str = ''
) -> list[str]:
    """Raise :class:`CheckpointError` when the weights do not fit ``model``.

    The one-line message lists the missing, unexpected and shape-mismatched keys and, when
    the checkpoint carries its config, the ``model.*`` config keys that differ from
    ``model_cfg``. Returns those config differences (for a warning) when the weights fit.
    """
    state_dict = checkpoint.get('state_dict', checkpoint)
    diff = []
    old_cfg = checkpoint_model_cfg(checkpoint)
    if old_cfg is not None and model_cfg is not None:
        diff = config_diff(old_cfg, dict(model_cfg))
    bad = state_dict_mismatch(model, state_dict)
    if any(bad.values()):
        parts = [
            f'{len(keys)} {what} key(s): {_shorten(keys)}'
            for what, keys in (
                ('missing', bad['missing']),
                ('unexpected', bad['unexpected']),
                ('shape-mismatched', bad['shape']),
            )
            if keys
        ]
        why = f'; its model config differs at {_shorten(diff, 4)}' if diff else ''
        meta = checkpoint.get('meta', {})
        name = name or (
            f'of run {meta["experiment_name"]}, epoch {meta.get("epoch")}'
            if 'experiment_name' in meta
            else ''
        )
        what = f'the checkpoint {name}' if name else 'the checkpoint'
        raise CheckpointError(f'{what} does not fit the model: {"; ".join(parts)}{why}')
    return diff


def _pointed(work_dir: str, pointer: str) -> str | None:
    """The file of ``work_dir`` that the text file ``pointer`` there names (by its base name,
    so that a moved work dir or another current directory still finds it), if it exists."""
    pointer = os.path.join(work_dir, pointer)
    if not os.path.isfile(pointer):
        return None
    with open(pointer) as f:
        named = f.read().strip()
    if not named:
        return None
    path = os.path.join(work_dir, os.path.basename(named))
    return path if os.path.isfile(path) else None


def latest_checkpoint(work_dir: str) -> str | None:
    """The checkpoint to resume from in ``work_dir``: the one named by ``last_checkpoint`` if
    that file exists, else the highest ``epoch_N.pth``/``iter_N.pth``; None when there is none."""
    named = _pointed(work_dir, 'last_checkpoint')
    if named is not None:
        return named
    found = []
    for fname in os.listdir(work_dir) if os.path.isdir(work_dir) else []:
        m = re.fullmatch(r'(epoch|iter)_(\d+)\.pth', fname)
        if m:
            found.append((m.group(1) == 'iter', int(m.group(2)), fname))
    return os.path.join(work_dir, max(found)[2]) if found else None


def best_checkpoint(work_dir: str) -> str:
    """The best checkpoint of ``work_dir``: the one ``best_checkpoint`` names, else the single
    ``best_*.pth`` there (a run killed mid-rotation may leave two, the pointer decides).

    Raises:
        CheckpointError: there is none (naming what is there) or there are several.
    """
    if not os.path.isdir(work_dir):
        raise CheckpointError(f'work dir not found: {work_dir}')
    named = _pointed(work_dir, 'best_checkpoint')
    if named is not None:
        return named
    names = sorted(f for f in os.listdir(work_dir) if f.startswith('best_') and f.endswith('.pth'))
    if len(names) == 1:
        return os.path.join(work_dir, names[0])
    if not names:
        others = sorted(f for f in os.listdir(work_dir) if f.endswith('.pth'))
        raise CheckpointError(
            f'no best checkpoint (best_*.pth) in {work_dir}; it holds '
            f'{_shorten(others) or "no checkpoints"} (pass one of them explicitly)'
        )
    raise CheckpointError(f'several best checkpoints in {work_dir}: {", ".join(names)}; pass one')


def resolve_checkpoint(path: str | os.PathLike) -> str:
    """A checkpoint file as given, or the best checkpoint of a training work dir.

    The rule of ``tools/test.py`` and of every inference tool (``ReIDInferencer``, extract,
    search, export_onnx). A work dir without a single ``best_*.pth`` is an error, never a
    silent fall-back to the last checkpoint.

    Raises:
        CheckpointError: the path does not exist, or the work dir has no (or several) best.
    """
    path = os.path.expanduser(os.fspath(path))
    if os.path.isdir(path):
        return best_checkpoint(path)
    if not os.path.isfile(path):
        raise CheckpointError(f'checkpoint not found: {path}')
    return path
