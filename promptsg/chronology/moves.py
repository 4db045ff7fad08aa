"""Configuration moves: what changed between two resolved configs, in the words of the field.

:func:`diff_configs` compares two configs key by key (a component whose ``type`` changes, or that
appears or disappears, is one change). :func:`describe_moves` names each change through a small
table of human names (``optim_wrapper.clip_grad.max_norm`` is "grad clip"), merges duplicates
(the input size set in the backbone and in every pipeline is one move) and groups learning rates
that move to the same value::

    grad clip 5 → 1; lr_clip_visual, lr_modules → 1e-6
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from promptsg.registry import LOSSES


class _Missing:
    """A key absent from one side of a comparison."""

    def __repr__(self) -> str:
        return 'MISSING'


MISSING = _Missing()

#: Words for the loss types, in moves (long) and in the summary column (short).
LOSS_WORDS = {
    'CrossEntropyLoss': ('CE', 'CE'),
    'ArcFaceLoss': ('ArcFace loss', 'ArcFace'),
    'TripletLoss': ('triplet', 'Tri'),
    'SupConLoss': ('SupCon', 'SupCon'),
    'CenterLoss': ('center loss', 'Center'),
}
HEAD_WORDS = {'LinearClassifier': 'linear', 'ArcFaceHead': 'ArcFace'}
#: Constructor arguments worth naming, with their words.
ARG_WORDS = {
    'scale': 's',
    'margin': 'm',
    'label_smoothing': 'label smoothing',
    'loss_weight': 'weight',
    'bnneck_dim': 'bnneck_dim',
}


@dataclass(frozen=True)
class Change:
    """One difference: the dotted key and its values before and after (``MISSING`` if absent)."""

    path: str
    old: Any
    new: Any


@dataclass(frozen=True)
class Move:
    """A change in words. ``family`` groups moves that may share one phrase (learning rates)."""

    order: int
    label: str
    old: str | None
    new: str | None
    family: str | None = None
    text: str | None = None

    def phrase(self) -> str:
        if self.text is not None:
            return self.text
        if self.old is None:
            return f'{self.label} {self.new}'
        if self.new is None:
            return f'{self.label} {self.old} removed'
        return f'{self.label} {self.old} → {self.new}'


# -- comparing ----------------------------------------------------------------------------------


def _is_dict_list(value: Any) -> bool:
    return (
        isinstance(value, list | tuple) and bool(value) and all(isinstance(v, dict) for v in value)
    )


def _plain(value: Any) -> Any:
    """Tuples as lists, recursively, so that (224, 224) equals [224, 224]."""
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _join(path: str, key: Any) -> str:
    return f'{path}.{key}' if path else str(key)


def _diff(old: Any, new: Any, path: str, out: list[Change]) -> None:
    if isinstance(old, dict) and isinstance(new, dict):
        if 'type' in old and 'type' in new and old['type'] != new['type']:
            out.append(Change(path, old, new))
            return
        for key in [*old, *(k for k in new if k not in old)]:
            _diff(old.get(key, MISSING), new.get(key, MISSING), _join(path, key), out)
    elif _is_dict_list(old) and _is_dict_list(new) and len(old) == len(new):
        for i, (a, b) in enumerate(zip(old, new)):
            _diff(a, b, _join(path, i), out)
    elif old is MISSING or new is MISSING or _plain(old) != _plain(new):
        out.append(Change(path, old, new))


def diff_configs(old: dict, new: dict) -> list[Change]:
    """Every difference between two resolved configs, in the order keys appear."""
    out: list[Change] = []
    _diff(old, new, '', out)
    return out


# -- values in words ----------------------------------------------------------------------------


def fmt_number(value: float | int) -> str:
    """``5.0 -> '5'``, ``0.35 -> '0.35'``, ``1e-06 -> '1e-6'``, ``0.0005 -> '5e-4'``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if value != 0 and abs(value) < 1e-2:
        mantissa, exponent = f'{value:.6e}'.split('e')
        mantissa = mantissa.rstrip('0').rstrip('.')
        return f'{mantissa}e{int(exponent)}'
    return f'{value:g}'


def fmt_value(value: Any) -> str:
    """A config value in a few characters."""
    if value is MISSING or value is None:
        return 'none'
    if isinstance(value, bool):
        return 'on' if value else 'off'
    if isinstance(value, int | float):
        return fmt_number(value)
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return str(value.get('type', '{...}'))
    if isinstance(value, list | tuple):
        return ', '.join(fmt_value(v) for v in value) or '[]'
    return repr(value)


def fmt_size(value: Any) -> str:
    """An (H, W) size as ``224×128``."""
    if isinstance(value, list | tuple) and len(value) == 2:
        return f'{value[0]}×{value[1]}'
    return fmt_value(value)


def describe_args(cfg: dict, skip: tuple[str, ...] = ('type', 'loss_name', 'inputs')) -> str:
    """``(s 30, m 0.5)`` from a component config's arguments; '' when it has none."""
    args = [
        f'{ARG_WORDS.get(k, k)} {fmt_value(v)}'
        for k, v in cfg.items()
        if k not in skip and not isinstance(v, dict | list | tuple)
    ]
    return f' ({", ".join(args)})' if args else ''


def loss_words(cfg: dict, short: bool = False) -> str:
    words = LOSS_WORDS.get(cfg.get('type'))
    return words[int(short)] if words else str(cfg.get('type'))


def head_words(cfg: dict | None) -> str:
    if not cfg:
        return 'none'
    return HEAD_WORDS.get(cfg.get('type'), str(cfg.get('type')))


def loss_term(cfg: dict) -> str:
    """The term name a loss config produces (its ``loss_name``, else the class default)."""
    if 'loss_name' in cfg:
        return cfg['loss_name']
    try:
        param = inspect.signature(LOSSES.get(cfg['type'])).parameters.get('loss_name')
    except Exception:
        param = None
    return param.default if param is not None else str(cfg.get('type'))


def schedule_words(schedulers: list | tuple | None) -> str:
    """``constant``, ``warm-up 1 ep + cosine to 1e-7``, ``×0.1 at 20, 40``, ..."""
    if not schedulers:
        return 'constant'
    parts = []
    for s in schedulers:
        kind = s.get('type')
        if kind == 'LinearLR':
            unit = 'ep' if s.get('by_epoch', True) else 'it'
            parts.append(f'warm-up {s.get("end", 0) - s.get("begin", 0)} {unit}')
        elif kind == 'CosineAnnealingLR':
            parts.append(f'cosine to {fmt_number(s.get("eta_min", 0.0))}')
        elif kind == 'MultiStepLR':
            steps = ', '.join(str(m) for m in s.get('milestones', []))
            parts.append(f'×{fmt_number(s.get("gamma", 0.1))} at {steps}')
        else:
            parts.append(str(kind))
    return ' + '.join(parts)


# -- the table of names ------------------------------------------------------------------------


def _lookup(cfg: dict, path: str) -> Any:
    node: Any = cfg
    for part in path.split('.'):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list | tuple) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return MISSING
    return node


def _simple(label: str, fmt: Callable[[Any], str] = fmt_value, family: str | None = None):
    def describe(change: Change, old_cfg: dict, new_cfg: dict, order: int) -> list[Move]:
        old = None if change.old is MISSING else fmt(change.old)
        new = None if change.new is MISSING else fmt(change.new)
        return [Move(order, label, old, new, family)]

    return describe


def _text(label: str):
    """Long strings (prompt templates): the new value only, quoted."""

    def describe(change: Change, old_cfg: dict, new_cfg: dict, order: int) -> list[Move]:
        if change.new is MISSING:
            return [Move(order, label, None, None, text=f'{label} removed')]
        return [Move(order, label, None, None, text=f'{label} → "{change.new}"')]

    return describe


def _component(label_of: Callable[[dict], str]):
    """A component that appears, disappears or changes type (neck, head, balancer...)."""

    def describe(change: Change, old_cfg: dict, new_cfg: dict, order: int) -> list[Move]:
        old, new = change.old, change.new
        if old is MISSING or old is None:
            text = f'{label_of(new)} on{describe_args(new)}'
        elif new is MISSING or new is None:
            text = f'{label_of(old)} off'
        else:
            text = f'{label_of(old)} → {label_of(new)}{describe_args(new)}'
        return [Move(order, text, None, None, text=text)]

    return describe


def _component_arg(label_of: Callable[[dict], str], root: str):
    """An argument of a component, named after the component: ``ArcFace s 25 → 30``."""

    def describe(change: Change, old_cfg: dict, new_cfg: dict, order: int) -> list[Move]:
        owner = _lookup(new_cfg, root)
        if owner is MISSING:
            owner = _lookup(old_cfg, root)
        key = change.path.rsplit('.', 1)[1]
        label = f'{label_of(owner)} {ARG_WORDS.get(key, key)}'
        return _simple(label)(change, old_cfg, new_cfg, order)

    return describe


def _loss(change: Change, old_cfg: dict, new_cfg: dict, order: int) -> list[Move]:
    if change.old is MISSING:
        label = loss_words(change.new)
        return [Move(order, label, None, None, 'loss on', f'{label} on{describe_args(change.new)}')]
    if change.new is MISSING:
        label = loss_words(change.old)
        return [Move(order, label, None, None, 'loss off', f'{label} off')]
    text = f'{loss_words(change.old)} → {loss_words(change.new)}{describe_args(change.new)}'
    return [Move(order, text, None, None, text=text)]


def _loss_arg(change: Change, old_cfg: dict, new_cfg: dict, order: int) -> list[Move]:
    root = change.path.rsplit('.', 1)[0]
    return _component_arg(loss_words, root)(change, old_cfg, new_cfg, order)


def _all_terms(cfg: dict) -> set[str]:
    return {loss_term(c) for c in (_lookup(cfg, 'model.losses') or {}).values()}


def _balancer_terms(change: Change, old_cfg: dict, new_cfg: dict, order: int) -> list[Move]:
    """Terms that follow the losses (balancing still covers every loss) are no move."""
    old, new = set(change.old or ()), set(change.new or ())
    if old == _all_terms(old_cfg) and new == _all_terms(new_cfg):
        return []
    return _simple('balanced terms')(change, old_cfg, new_cfg, order)


def _balancer(change: Change, old_cfg: dict, new_cfg: dict, order: int) -> list[Move]:
    cfg = new_cfg if change.new is not MISSING else old_cfg
    words = {loss_term(c): loss_words(c) for c in _lookup(cfg, 'model.losses').values()}
    if change.new is MISSING:
        return [Move(order, '', None, None, text='auto loss-balancing off')]
    terms = ', '.join(words.get(t, t) for t in change.new.get('terms', []))
    kind = 'auto loss-balancing' if change.new.get('type') == 'UncertaintyWeighting' else None
    kind = kind or f'loss balancing {change.new.get("type")}'
    return [Move(order, '', None, None, text=f'{kind} on ({terms})' if terms else f'{kind} on')]


def _schedule(change: Change, old_cfg: dict, new_cfg: dict, order: int) -> list[Move]:
    old = schedule_words(_lookup(old_cfg, 'param_scheduler') or [])
    new = schedule_words(_lookup(new_cfg, 'param_scheduler') or [])
    if old == new:
        return [
            Move(order, f'LR schedule {change.path}', fmt_value(change.old), fmt_value(change.new))
        ]
    return [Move(order, 'LR schedule', old, new)]


def _early_stopping(change: Change, old_cfg: dict, new_cfg: dict, order: int) -> list[Move]:
    if change.new is MISSING:
        return [Move(order, '', None, None, text='early stopping off')]
    patience = change.new.get('patience')
    return [Move(order, '', None, None, text=f'early stopping on (patience {patience})')]


#: (pattern, describer); ``*`` matches one key. The order here is the order of the moves.
RULES: list[tuple[str, Any]] = [
    ('model.backbone.type', _simple('backbone')),
    ('model.backbone.arch', _simple('arch')),
    ('model.backbone.pretrained', _simple('weights')),
    ('model.backbone.img_size', _simple('input', fmt_size)),
    ('*_dataloader.dataset.pipeline.*.size', _simple('input', fmt_size)),
    ('model.backbone.unfreeze_blocks', _simple('unfreeze_blocks')),
    ('model.inversion.variant', _simple('inversion')),
    ('model.inversion.*', _simple('inversion')),
    ('model.interaction.num_cross_layers', _simple('MIM cross-attn layers')),
    ('model.interaction.num_self_layers', _simple('MIM self-attn layers')),
    ('model.interaction.num_heads', _simple('MIM heads')),
    ('model.prompt.template', _text('template')),
    ('model.fixed_prompt.template', _text('fixed prompt')),
    ('model.neck', _component(lambda c: str(c.get('type')))),
    ('model.neck.bnneck_dim', _simple('bnneck_dim')),
    ('model.neck.*', _component_arg(lambda c: str(c.get('type')), 'model.neck')),
    ('model.head', _component(lambda c: f'{head_words(c)} head')),
    ('model.head.*', _component_arg(head_words, 'model.head')),
    ('model.losses.*', _loss),
    ('model.losses.*.*', _loss_arg),
    ('model.loss_balancer', _balancer),
    ('model.loss_balancer.terms', _balancer_terms),
    ('model.test_cfg.prompt', _simple('test prompt')),
    ('model.test_cfg.*', _simple('test')),
    ('model.feat_dropout', _simple('dropout')),
    ('model.retrieval_feature', _simple('retrieval feature')),
    ('optim_wrapper.optimizer.type', _simple('optimiser')),
    ('optim_wrapper.optimizer.weight_decay', _simple('wd')),
    ('optim_wrapper.clip_grad.max_norm', _simple('grad clip')),
    ('optim_wrapper.clip_grad', _simple('grad clip', lambda v: fmt_value(v.get('max_norm')))),
    ('optim_wrapper.optimizer.lr', _simple('lr', family='lr')),
    ('optim_wrapper.paramwise_cfg.lr_clip_visual', _simple('lr_clip_visual', family='lr')),
    ('optim_wrapper.paramwise_cfg.lr_modules', _simple('lr_modules', family='lr')),
    ('param_scheduler', _schedule),
    ('param_scheduler.*', _schedule),
    ('param_scheduler.*.*', _schedule),
    ('train_cfg.max_epochs', _simple('epochs')),
    ('train_cfg.val_interval', _simple('validation every')),
    ('default_hooks.early_stopping', _early_stopping),
    ('default_hooks.early_stopping.patience', _simple('patience')),
    ('default_hooks.early_stopping.min_delta', _simple('early-stop min_delta')),
    ('train_dataloader.batch_size', _simple('batch')),
    ('train_dataloader.sampler.num_instances', _simple('images per id (K)')),
    ('*_dataloader.dataset.data_root', _simple('data_root')),
    ('randomness.seed', _simple('seed')),
]


def _pattern(pattern: str) -> re.Pattern:
    """``*`` matches within one key: ``*_dataloader`` and ``model.losses.*``."""
    keys = (re.escape(key).replace(r'\*', '[^.]*') for key in pattern.split('.'))
    return re.compile(r'^' + r'\.'.join(keys) + r'$')


_COMPILED = [(_pattern(pattern), describe) for pattern, describe in RULES]


def _fallback(change: Change, order: int) -> Move:
    old = None if change.old is MISSING else fmt_value(change.old)
    new = None if change.new is MISSING else fmt_value(change.new)
    return Move(order, change.path, old, new)


def name_changes(changes: list[Change], old_cfg: dict, new_cfg: dict) -> list[Move]:
    """Each change in words (a change may give no move, or one)."""
    moves = []
    for change in changes:
        for order, (pattern, describe) in enumerate(_COMPILED):
            if pattern.match(change.path):
                moves.extend(describe(change, old_cfg, new_cfg, order))
                break
        else:
            moves.append(_fallback(change, len(_COMPILED)))
    return moves


def _merge(moves: list[Move]) -> list[str]:
    """Drop repeated moves, pair a loss off with one on, group learning rates by new value."""
    unique: list[Move] = []
    for move in moves:
        if all(replace(move, order=m.order) != m for m in unique):
            unique.append(move)
    unique.sort(key=lambda m: m.order)
    offs = [m for m in unique if m.family == 'loss off']
    ons = [m for m in unique if m.family == 'loss on']
    replaced = None
    if len(offs) == 1 and len(ons) == 1:
        replaced = f'{ons[0].label} replaces {offs[0].label}'
    phrases: list[str] = []
    done: set[int] = set()
    for i, move in enumerate(unique):
        if i in done:
            continue
        if replaced is not None and move in (offs[0], ons[0]):
            if replaced not in phrases:
                phrases.append(replaced)
            continue
        if move.family == 'lr':
            group = [
                j
                for j, other in enumerate(unique)
                if other.family == 'lr' and other.new == move.new and j not in done
            ]
            done.update(group)
            members = [unique[j] for j in group]
            labels = ', '.join(m.label for m in members)
            olds = {m.old for m in members}
            if len(members) > 1 and len(olds) > 1:
                phrases.append(f'{labels} → {move.new}')
            else:
                phrases.append(Move(move.order, labels, move.old, move.new).phrase())
            continue
        phrases.append(move.phrase())
    return phrases


def describe_moves(old_cfg: dict | None, new_cfg: dict) -> list[str]:
    """The moves from ``old_cfg`` to ``new_cfg`` as short phrases (``[]`` when none)."""
    if old_cfg is None:
        return []
    return _merge(name_changes(diff_configs(old_cfg, new_cfg), old_cfg, new_cfg))


# -- one config in a few words -----------------------------------------------------------------


def loss_head_schedule(cfg: dict) -> str:
    """``ArcFace + Tri + SupCon (auto-balanced) / BNNeck 256 + ArcFace s30 m0.5 / constant``."""
    model = cfg.get('model', {})
    losses = model.get('losses') or {}
    order = list(LOSS_WORDS)
    ranked = sorted(
        losses.values(),
        key=lambda c: order.index(c['type']) if c.get('type') in order else len(order),
    )
    balancer = model.get('loss_balancer') or {}
    terms = set(balancer.get('terms', ()))
    balanced = [c for c in ranked if loss_term(c) in terms]
    loss = ' + '.join(loss_words(c, short=True) for c in balanced)
    if balanced:
        auto = balancer.get('type') == 'UncertaintyWeighting'
        loss += ' (auto-balanced)' if auto else ' (balanced)'
    rest = ' + '.join(loss_words(c, short=True) for c in ranked if c not in balanced)
    loss = ' + '.join(p for p in (loss, rest) if p)
    head = model.get('head')
    head_text = head_words(head)
    if head and head.get('type') == 'ArcFaceHead':
        head_text += (
            f' s{fmt_number(head.get("scale", 30.0))} m{fmt_number(head.get("margin", 0.5))}'
        )
    neck = model.get('neck')
    if neck:
        dim = neck.get('bnneck_dim')
        head_text = f'{neck.get("type")}{f" {dim}" if dim else ""} + {head_text}'
    return f'{loss} / {head_text} / {schedule_words(cfg.get("param_scheduler"))}'


def optimisation(cfg: dict) -> str:
    """``clip 5; wd 5e-4; lr 1e-4 vis / 1e-5 mod; dropout 0.1; patience 3; 20 ep``."""
    optim = cfg.get('optim_wrapper', {})
    parts = []
    clip = (optim.get('clip_grad') or {}).get('max_norm')
    if clip is not None:
        parts.append(f'clip {fmt_number(clip)}')
    wd = optim.get('optimizer', {}).get('weight_decay')
    if wd is not None:
        parts.append(f'wd {fmt_number(wd)}')
    paramwise = optim.get('paramwise_cfg') or {}
    if 'lr_clip_visual' in paramwise or 'lr_modules' in paramwise:
        vis, mod = paramwise.get('lr_clip_visual'), paramwise.get('lr_modules')
        parts.append(f'lr {fmt_number(vis)} vis / {fmt_number(mod)} mod')
    elif 'lr' in optim.get('optimizer', {}):
        parts.append(f'lr {fmt_number(optim["optimizer"]["lr"])}')
    dropout = cfg.get('model', {}).get('feat_dropout')
    if dropout:
        parts.append(f'dropout {fmt_number(dropout)}')
    stopping = (cfg.get('default_hooks') or {}).get('early_stopping')
    if stopping:
        parts.append(f'patience {stopping.get("patience")}')
    epochs = (cfg.get('train_cfg') or {}).get('max_epochs')
    if epochs:
        parts.append(f'{epochs} ep')
    return '; '.join(parts)
