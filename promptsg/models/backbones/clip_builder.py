"""Build an open_clip ``CLIP`` by arch name and load its weights (open_clip tag or local file).

Local files may use the OpenAI layout (a TorchScript archive, or a plain state dict that
still carries the int entries ``input_resolution``, ``context_length`` and ``vocab_size``) or
the open_clip layout (a ``.bin``/``.pt``/``.pth`` state dict, possibly wrapped in
``{'state_dict': ...}`` and/or with ``module.`` prefixes, or a ``.safetensors`` file).
OpenAI weights were trained with QuickGELU, so they (and tags whose open_clip config says
``quick_gelu``) build the model with QuickGELU; open_clip-layout files of QuickGELU weights
need the ``-quickgelu`` arch name (e.g. 'ViT-B-16-quickgelu').
"""

from __future__ import annotations

import copy
import difflib
import functools
import os
import zipfile
from collections.abc import Mapping
from pathlib import Path

import open_clip
import torch
from open_clip.model import CLIP

from promptsg.errors import CheckpointError, ConfigError
from promptsg.models.backbones.clip_download import fetch_tag_file

_TINY_TEXT = dict(context_length=77, vocab_size=49408, width=64, heads=2, layers=2)

#: Tiny random-init architectures for tests: name -> open_clip model cfg.
TINY_ARCHS: dict[str, dict] = {
    'tiny-vit': dict(
        embed_dim=64,
        vision_cfg=dict(image_size=224, patch_size=32, width=64, layers=2, head_width=32),
        text_cfg=_TINY_TEXT,
    ),
    'tiny-rn': dict(
        embed_dim=64,
        vision_cfg=dict(image_size=224, layers=(1, 1, 1, 1), width=16, head_width=64),
        text_cfg=_TINY_TEXT,
    ),
}

_WEIGHT_SUFFIXES = ('.pt', '.pth', '.bin', '.safetensors')
_OPENAI_INT_KEYS = ('input_resolution', 'context_length', 'vocab_size')
# Non-persistent buffers that a traced (TorchScript) model still stores.
_DERIVED_KEYS = ('attn_mask',)


def _is_plain_clip(cfg: dict) -> bool:
    """True when open_clip would build ``open_clip.model.CLIP`` with its own text transformer."""
    vision, text = cfg.get('vision_cfg', {}), cfg.get('text_cfg', {})
    return not (
        cfg.get('custom_text')
        or 'multimodal_cfg' in cfg
        or vision.get('timm_model_name')
        or text.get('hf_model_name')
        or text.get('pool_type', 'argmax') != 'argmax'
        or text.get('embed_cls')
    )


@functools.cache
def supported_archs() -> tuple[str, ...]:
    """Tiny test archs plus every open_clip arch that builds a plain ``CLIP``."""
    names = [n for n in open_clip.list_models() if _is_plain_clip(open_clip.get_model_config(n))]
    return (*TINY_ARCHS, *names)


def _closest(name: str, choices: tuple[str, ...], n: int = 12) -> str:
    close = difflib.get_close_matches(name, choices, n=len(choices), cutoff=0.0)
    shown = ', '.join(close[:n])
    return shown + (f' (+{len(close) - n} more)' if len(close) > n else '')


def clip_config(arch: str) -> dict:
    """The open_clip model cfg (embed_dim, vision_cfg, text_cfg, ...) of ``arch``, a copy."""
    cfg = TINY_ARCHS.get(arch) if isinstance(arch, str) else None
    if cfg is None and isinstance(arch, str) and arch in open_clip.list_models():
        cfg = open_clip.get_model_config(arch)
    if cfg is None:
        raise ConfigError(
            f"unknown CLIP arch '{arch}'; choices (closest first): "
            f'{_closest(str(arch), supported_archs())}'
        )
    if not _is_plain_clip(cfg):
        raise ConfigError(
            f"arch '{arch}' is not a plain CLIP (custom/HF text tower, timm image tower or "
            f'non-EOT text pooling); choices (closest first): {_closest(arch, supported_archs())}'
        )
    return copy.deepcopy(cfg)


def is_weight_path(pretrained: str | os.PathLike) -> bool:
    """Whether ``pretrained`` names a local file rather than an open_clip tag."""
    if isinstance(pretrained, os.PathLike):
        return True
    return os.sep in pretrained or '/' in pretrained or pretrained.endswith(_WEIGHT_SUFFIXES)


def _is_torchscript(path: Path) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(name.endswith('constants.pkl') for name in archive.namelist())


def read_state_dict(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], bool]:
    """Read a CLIP state dict from a local file; returns ``(state_dict, openai_layout)``.

    Drops the OpenAI int entries and derived buffers, unwraps ``{'state_dict': ...}`` and strips
    ``module.`` prefixes. ``openai_layout`` is True for TorchScript archives and for state
    dicts that carried the OpenAI int entries.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise CheckpointError(f'pretrained file not found: {path}')
    try:
        if path.suffix == '.safetensors':
            from safetensors.torch import load_file

            obj, openai_layout = load_file(str(path), device='cpu'), False
        elif _is_torchscript(path):
            obj, openai_layout = torch.jit.load(str(path), map_location='cpu').state_dict(), True
        else:
            obj = torch.load(path, map_location='cpu', weights_only=True)
            openai_layout = False
    except Exception as err:  # corrupt file, foreign pickle, ...
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else ''
        raise CheckpointError(
            f'cannot read pretrained file {path}: {type(err).__name__}: {first_line}'
        ) from err
    if isinstance(obj, Mapping) and isinstance(obj.get('state_dict'), Mapping):
        obj = obj['state_dict']
    if not isinstance(obj, Mapping):
        raise CheckpointError(
            f'pretrained file {path} holds a {type(obj).__name__}, not a state dict'
        )
    openai_layout = openai_layout or any(key in obj for key in _OPENAI_INT_KEYS)
    state_dict = {}
    for key, value in obj.items():
        key = key[len('module.') :] if key.startswith('module.') else key
        if key in _OPENAI_INT_KEYS or key in _DERIVED_KEYS:
            continue
        if not isinstance(value, torch.Tensor):
            raise CheckpointError(
                f"pretrained file {path}: entry '{key}' is a {type(value).__name__}, not a tensor"
            )
        state_dict[key] = value
    return state_dict, openai_layout


def _few(keys: list[str], n: int = 5) -> str:
    return ', '.join(keys[:n]) + (f' (+{len(keys) - n} more)' if len(keys) > n else '')


def load_clip_weights(model: CLIP, state_dict: dict[str, torch.Tensor], source: str) -> None:
    """Load ``state_dict`` into ``model`` strictly; a mismatch raises one-line CheckpointError."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(own))
    wrong_shape = sorted(
        f'{k} (file {tuple(state_dict[k].shape)} vs model {tuple(own[k].shape)})'
        for k in set(own) & set(state_dict)
        if state_dict[k].shape != own[k].shape
    )
    problems = []
    if missing:
        problems.append(f'missing keys: {_few(missing)}')
    if unexpected:
        problems.append(f'unexpected keys: {_few(unexpected)}')
    if wrong_shape:
        problems.append(f'shape mismatch: {_few(wrong_shape, 3)}')
    if problems:
        raise CheckpointError(f'{source} does not match the arch: ' + '; '.join(problems))
    model.load_state_dict(state_dict, strict=True)


def _fetch_tag(arch: str, tag: str, cache_dir: str | None) -> tuple[str, dict]:
    """Download (or find in open_clip's cache) the file of ``tag``; returns (path, tag cfg)."""
    if arch in TINY_ARCHS:
        raise ConfigError(
            f"arch '{arch}' has no pretrained tags (got pretrained='{tag}'); "
            'pass a local file path or None'
        )
    if not open_clip.is_pretrained_cfg(arch, tag):
        tags = open_clip.list_pretrained_tags_by_model(arch)
        raise ConfigError(
            f"unknown pretrained tag '{tag}' for arch '{arch}'; valid tags: "
            f'{", ".join(tags) or "none"}; or pass a local file path'
        )
    tag_cfg = open_clip.get_pretrained_cfg(arch, tag)
    return fetch_tag_file(tag_cfg, cache_dir, f"'{tag}' for arch '{arch}'"), tag_cfg


def build_clip(
    arch: str, pretrained: str | os.PathLike | None = None, cache_dir: str | None = None
) -> CLIP:
    """Build the open_clip ``CLIP`` named ``arch`` and load ``pretrained`` weights into it.

    ``arch``: an open_clip model name ('ViT-B-16', 'RN50', ...) or a key of ``TINY_ARCHS``.
    ``pretrained``: None (random init), an open_clip tag ('openai', 'laion2b_s34b_b88k', ...;
    fetched into ``cache_dir``), or a local weight file (see the module docstring).
    """
    cfg = clip_config(arch)
    state_dict, source = None, ''
    if pretrained is not None and str(pretrained) != '':
        if is_weight_path(pretrained):
            state_dict, openai_layout = read_state_dict(pretrained)
            source = f'pretrained file {pretrained}'
            quick_gelu = openai_layout
        else:
            path, tag_cfg = _fetch_tag(arch, str(pretrained), cache_dir)
            state_dict, openai_layout = read_state_dict(path)
            source = f"pretrained '{pretrained}' ({path})"
            quick_gelu = openai_layout or tag_cfg.get('quick_gelu', False)
        if quick_gelu:
            cfg['quick_gelu'] = True
    model = CLIP(**cfg)
    if state_dict is not None:
        load_clip_weights(model, state_dict, f"{source} for arch '{arch}'")
    return model
