"""Config reading and merging: one home for ``Config.fromfile``, ``--cfg-options``, path options
and the defaults every promptsg config gets (optimiser wrapper, worker seeding, class count)."""

from __future__ import annotations

import ast
import difflib
import os.path as osp
from collections.abc import Mapping

import torch
from mmengine.config import Config, DictAction
from mmengine.logging import print_log

from promptsg.errors import ConfigError

__all__ = [
    'DictAction',
    'apply_cfg_options',
    'complete_gpu_defaults',
    'check_config_values',
    'complete_optim_wrapper',
    'fill_num_classes',
    'load_config',
    'path_options',
    'read_config',
    'sync_sampler_batch_size',
]


def _check_option_key(cfg: Mapping, key: str):
    """Reject an option whose path does not exist, unless it adds an argument to a component;
    return the value the option replaces (None for a new argument).

    ``model.backbone.pretrained=...`` may add a constructor argument (its parent has ``type``);
    ``train_dataloder.batch_size=...`` (a typo) names nothing and is an error.
    """
    node, walked = cfg, []
    parts = key.split('.')
    for i, part in enumerate(parts):
        if isinstance(node, (list, tuple)) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        elif isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, Mapping) and i == len(parts) - 1 and 'type' in node:
            return None
        else:
            here = '.'.join(walked) or 'the config'
            choices = list(node) if isinstance(node, Mapping) else []
            close = difflib.get_close_matches(part, choices, n=5, cutoff=0.0)
            hint = f'; keys of {here}: {", ".join(close)}' if close else ''
            raise ConfigError(f"--cfg-options key '{key}': '{part}' is not in {here}{hint}")
        walked.append(part)
    return node


#: Words mmengine takes in some numeric slots (``log_processor.window_size='global'``, ...).
WORDS_FOR_NUMBERS = ('global', 'auto')


def _check_option_type(key: str, value, old) -> None:
    """Reject text where the config holds a number or a flag (``max_epochs=abc``).

    ``DictAction`` already turns ``30``, ``1e-4``, ``True`` and ``None`` into Python values, so
    text left over where the config has a number is a typo, caught here before any work.
    """
    if not isinstance(value, str) or old is None or not isinstance(old, (bool, int, float)):
        return
    if value in WORDS_FOR_NUMBERS:
        return
    kind = 'True or False' if isinstance(old, bool) else 'a number'
    raise ConfigError(
        f"--cfg-options {key}={value!r}: expected {kind}, like the config's value {old!r}"
    )


def apply_cfg_options(cfg: Config, options: dict | None) -> Config:
    """Merge ``--cfg-options`` into ``cfg`` after checking every key exists and that text does
    not replace a number or a flag (see above)."""
    if not options:
        return cfg
    tree = cfg.to_dict()
    for key, value in options.items():
        _check_option_type(key, value, _check_option_key(tree, key))
    cfg.merge_from_dict(options)
    return cfg


def read_config(path: str) -> Config:
    """``Config.fromfile`` with a missing file, a syntax error or a failing import (of a base
    file or a ``custom_imports`` module) as a one-line ConfigError."""
    if not osp.isfile(path):
        raise ConfigError(f'config file not found: {path}')
    check_base_cycle(path)
    try:
        return Config.fromfile(path)
    except SyntaxError as err:
        where = err.filename if err.filename and osp.isfile(err.filename) else path
        raise ConfigError(f'config {where}, line {err.lineno}: {err.msg}') from err
    except Exception as err:  # a bad _base_ path, a NameError, an import that fails
        root = err
        while root.__cause__ or root.__context__:  # mmengine wraps a failing custom import
            root = root.__cause__ or root.__context__
        first = (str(root).strip().splitlines() or [''])[0]
        raise ConfigError(f'cannot read config {path}: {type(root).__name__}: {first}') from err


def _base_files(path: str) -> list[str]:
    """The local ``_base_`` files a Python config names (resolved beside it), read with
    ``ast`` without running the file; package bases (``pkg::path``) are not followed."""
    try:
        with open(path, encoding='utf-8') as f:
            tree = ast.parse(f.read(), filename=path)
    except (OSError, SyntaxError, ValueError):
        return []  # Config.fromfile reports it
    names: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == '_base_' for t in node.targets
        ):
            try:
                value = ast.literal_eval(node.value)
            except ValueError:
                continue
            names += [value] if isinstance(value, str) else [v for v in value if isinstance(v, str)]
    folder = osp.dirname(path)
    return [osp.normpath(osp.join(folder, n)) for n in names if '::' not in n]


def check_base_cycle(path: str) -> None:
    """Raise ConfigError when a config's ``_base_`` chain leads back to itself (mmengine would
    recurse until a RecursionError)."""
    done: set[str] = set()

    def visit(node: str, chain: list[str]) -> None:
        node = osp.realpath(node)
        if node in chain:
            loop = chain[chain.index(node) :] + [node]
            raise ConfigError(
                f'_base_ cycle in config {path}: ' + ' -> '.join(osp.relpath(p) for p in loop)
            )
        if node in done or not osp.isfile(node):
            return
        for base in _base_files(node):
            visit(base, [*chain, node])
        done.add(node)

    visit(path, [])


#: The data loaders whose data sets ``--data-root`` points at.
LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


def path_options(data_root: str | None = None, pretrained: str | None = None) -> dict:
    """``--cfg-options`` that point every data set at ``data_root`` and the backbone at weights."""
    options: dict = {}
    if data_root is not None:
        options.update({f'{loader}.dataset.data_root': str(data_root) for loader in LOADERS})
    if pretrained is not None:
        options['model.backbone.pretrained'] = str(pretrained)
    return options


def load_config(
    path: str,
    options: dict | None = None,
    data_root: str | None = None,
    pretrained: str | None = None,
) -> Config:
    """Read a Python config, fill the optimiser defaults (see :func:`complete_optim_wrapper`), point the
    data sets at ``data_root`` and the backbone at ``pretrained`` (when given), then apply
    ``--cfg-options``; an unreadable file is a ConfigError (see :func:`read_config`)."""
    cfg = read_config(path)
    complete_optim_wrapper(cfg)  # so that options may add e.g. optim_wrapper.dtype
    present = {k: v for k, v in path_options(data_root, pretrained).items() if _has_loader(cfg, k)}
    _check_one_data_root(cfg, present)
    apply_cfg_options(cfg, present)
    apply_cfg_options(cfg, options)
    check_config_values(cfg)
    sync_sampler_batch_size(cfg)
    return cfg


#: ``(section, key, smallest valid value)`` of the integer settings checked before any work.
INTEGER_SETTINGS = tuple(
    (loader, key, low)
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader')
    for key, low in (('batch_size', 1), ('num_workers', 0))
) + (
    ('train_cfg', 'max_epochs', 1),
    ('train_cfg', 'max_iters', 1),
    ('train_cfg', 'val_interval', 1),
)


def check_config_values(cfg: Config) -> None:
    """Raise ConfigError for a batch size, worker count or epoch count that is not an integer
    in range, whether written in the config file or given as an option (``batch_size=0`` would
    hang the P×K sampler; ``batch_size='16'`` fails deep in the data loader)."""
    for section, key, low in INTEGER_SETTINGS:
        node = cfg.get(section)
        if not isinstance(node, Mapping) or node.get(key) is None:
            continue
        value = node[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            kind = 'a positive integer' if low == 1 else 'an integer >= 0'
            raise ConfigError(f'{section}.{key} must be {kind}; got {value!r}')


def sync_sampler_batch_size(cfg: Config) -> None:
    """Give the P×K sampler the training loader's batch size (it cuts batches of that size)."""
    loader = cfg.get('train_dataloader') or {}
    sampler = loader.get('sampler') or {}
    if sampler.get('type') == 'PKSampler':
        sampler['batch_size'] = loader['batch_size']


def _check_one_data_root(cfg: Config, options: dict) -> None:
    """``--data-root`` names one folder: a loader over several data sets (``ConcatReIDDataset``)
    needs one per member, so that is a ConfigError naming the options to use instead."""
    for key in options:
        loader = key.split('.')[0]
        if key.endswith('.data_root') and cfg[loader].dataset.get('type') == 'ConcatReIDDataset':
            raise ConfigError(
                f'--data-root gives one folder, but {loader} reads several data sets '
                f'(ConcatReIDDataset): set each with --cfg-options '
                f'{loader}.dataset.datasets.<i>.data_root=FOLDER'
            )


def _has_loader(cfg: Config, key: str) -> bool:
    """Whether the config has the data loader (or model) that a path option ``key`` targets."""
    return bool(cfg.get(key.split('.')[0]))


def complete_optim_wrapper(cfg: Config) -> None:
    optim_wrapper = cfg.get('optim_wrapper')
    if isinstance(optim_wrapper, Mapping) and 'optimizer' in optim_wrapper:
        optim_wrapper.setdefault('constructor', 'ReIDOptimWrapperConstructor')
        if optim_wrapper['constructor'] == 'ReIDOptimWrapperConstructor':
            optim_wrapper.setdefault('type', 'ReIDOptimWrapper')
    loader = cfg.get('train_dataloader')
    if isinstance(loader, Mapping):
        loader.setdefault('worker_init_fn', dict(type='promptsg.reid_worker_init_fn'))


def complete_gpu_defaults(cfg: Config, cuda: bool | None = None) -> None:
    """Defaults a CUDA user expects (nothing changes without CUDA): bf16 autocast unless
    ``optim_wrapper.dtype`` is set (None switches it off), TF32 matmuls unless
    ``allow_tf32=False``, pinned training/validation/test loaders unless ``pin_memory`` is set,
    and cudnn benchmark (inputs have one fixed size) when ``env_cfg.cudnn_benchmark`` is None
    and the run is not deterministic."""
    cuda = torch.cuda.is_available() if cuda is None else cuda
    if not cuda:
        return
    optim_wrapper = cfg.get('optim_wrapper')
    if isinstance(optim_wrapper, Mapping) and optim_wrapper.get('type') == 'ReIDOptimWrapper':
        optim_wrapper.setdefault('dtype', 'bfloat16' if torch.cuda.is_bf16_supported() else None)
    if cfg.get('allow_tf32', True):
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        if isinstance(cfg.get(key), Mapping):
            cfg[key].setdefault('pin_memory', True)
    env = cfg.get('env_cfg')
    if isinstance(env, Mapping) and env.get('cudnn_benchmark') is None:
        deterministic = (cfg.get('randomness') or {}).get('deterministic', False)
        env['cudnn_benchmark'] = not deterministic


def fill_num_classes(cfg: Config, dataset=None) -> int | None:
    """Set ``model.num_classes`` from the training set when the config leaves it ``None``.

    ``dataset``: the training set when it is already built; otherwise it is built here (without
    its pipeline) to count its identities. Returns the value set, or None when nothing was
    filled in.
    """
    model, loader = cfg.get('model'), cfg.get('train_dataloader')
    if not isinstance(model, Mapping) or model.get('num_classes', 0) is not None or not loader:
        return None
    if dataset is None:
        from promptsg.registry import DATASETS

        dataset = DATASETS.build(dict(loader['dataset'], pipeline=[]))
    cfg.model.num_classes = dataset.metainfo['num_classes']
    print_log(
        f'model.num_classes = {cfg.model.num_classes} (identities of the training set)',
        logger='current',
    )
    return cfg.model.num_classes
