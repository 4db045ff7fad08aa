"""The versions of a chronology: ``v1.py``, ``v2.py``, ... in one configs folder, each inheriting
the previous one."""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

from promptsg.engine.config import read_config
from promptsg.errors import ConfigError

_VERSION_FILE = re.compile(r'^v(\d+)\.py$')

#: Top-level config keys the Runner consumes; the chronology compares only these (helper
#: variables such as ``img_size`` or ``train_pipeline`` reach the Runner through them).
RUNNER_KEYS = (
    'model',
    'train_dataloader',
    'val_dataloader',
    'test_dataloader',
    'val_evaluator',
    'test_evaluator',
    'optim_wrapper',
    'param_scheduler',
    'train_cfg',
    'val_cfg',
    'test_cfg',
    'default_hooks',
    'custom_hooks',
    'randomness',
    'env_cfg',
    'model_wrapper_cfg',
    'load_from',
    'default_scope',
)
#: Notes a version file states for itself (read from its own text, never inherited).
NOTE_KEYS = ('remark', 'as_run')


@dataclass(frozen=True)
class Version:
    """One version of a chronology: its name (``'v6'``), number and config file."""

    name: str
    number: int
    path: Path

    def resolved(self) -> dict:
        """The version's config with its ``_base_`` chain resolved, Runner keys only."""
        cfg = read_config(str(self.path)).to_dict()
        return {k: cfg[k] for k in RUNNER_KEYS if k in cfg}

    def notes(self) -> dict[str, str]:
        """``remark`` and ``as_run`` as written in this file ('' when it states none)."""
        return read_notes(self.path)


def find_versions(configs_dir: str | Path) -> list[Version]:
    """The ``v<N>.py`` files of ``configs_dir``, ordered by N."""
    folder = Path(configs_dir)
    if not folder.is_dir():
        raise ConfigError(f'configs folder not found: {folder}')
    versions = []
    for path in folder.iterdir():
        match = _VERSION_FILE.match(path.name)
        if match:
            versions.append(Version(f'v{match.group(1)}', int(match.group(1)), path))
    if not versions:
        raise ConfigError(f'no version configs (v1.py, v2.py, ...) in {folder}')
    return sorted(versions, key=lambda v: v.number)


def select_versions(versions: list[Version], names: list[str] | None) -> list[Version]:
    """The versions named in ``names`` (all when None), in chronology order."""
    if not names:
        return versions
    known = {v.name: v for v in versions}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ConfigError(f'unknown version(s) {unknown}; choose from {list(known)}')
    return [v for v in versions if v.name in set(names)]


def read_notes(path: str | Path) -> dict[str, str]:
    """String literals assigned to ``remark`` / ``as_run`` at the top level of one config file."""
    tree = ast.parse(Path(path).read_text(encoding='utf-8'), filename=str(path))
    notes = dict.fromkeys(NOTE_KEYS, '')
    for node in tree.body:
        if not isinstance(node, ast.Assign) or len(node.targets) != 1:
            continue
        target = node.targets[0]
        if isinstance(target, ast.Name) and target.id in NOTE_KEYS:
            try:
                value = ast.literal_eval(node.value)
            except ValueError as e:
                raise ConfigError(f'{path}: {target.id} must be a string literal') from e
            if not isinstance(value, str):
                raise ConfigError(f'{path}: {target.id} must be a string, got {value!r}')
            notes[target.id] = value
    return notes
