"""Parameter groups of a ReID model: the CLIP image encoder at one lr, new modules at another."""

from __future__ import annotations

import numbers

from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from tabulate import tabulate
from torch import nn

from promptsg.errors import ConfigError
from promptsg.registry import OPTIM_WRAPPER_CONSTRUCTORS, OPTIM_WRAPPERS, OPTIMIZERS

#: Parameters under this prefix form the image encoder (``lr_clip_visual``) ...
VISUAL_PREFIX = 'backbone.'
#: ... except the frozen text encoder, which is never optimised.
TEXT_PREFIX = 'backbone.text_encoder.'
PARAMWISE_KEYS = (
    'lr_clip_visual',
    'lr_modules',
    'bias_lr_mult',
    'norm_bias_decay',
    'no_decay_keys',
)
NORM_TYPES = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm, nn.LocalResponseNorm)


def _positive(key: str, value) -> float:
    if not isinstance(value, numbers.Real) or isinstance(value, bool) or not value > 0:
        raise ConfigError(f'optim_wrapper.{key} must be a positive number; got {value!r}')
    return float(value)


def norm_and_bias_names(model: nn.Module) -> set[str]:
    """Names of the parameters of normalisation layers and of every bias (``*bias``)."""
    names = set()
    for module_name, module in model.named_modules():
        for param_name, _ in module.named_parameters(recurse=False):
            full = f'{module_name}.{param_name}' if module_name else param_name
            is_bias = param_name == 'bias' or param_name.endswith('_bias')  # in_proj_bias
            if isinstance(module, NORM_TYPES) or is_bias:
                names.add(full)
    return names


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class ReIDOptimWrapperConstructor:
    """Build the optimiser with one learning rate for the image encoder and one for the rest.

    Groups (each a dict with ``name``, ``lr_key``, ``lr``, ``weight_decay``, ``params``):

    - ``clip_visual``: trainable ``backbone.*`` parameters except ``backbone.text_encoder.*``,
      at ``lr_clip_visual``;
    - ``modules``: every other trainable parameter (inversion, interaction, neck, head, loss
      parameters such as center-loss centres and balancer log-variances), at ``lr_modules``;
    - ``<group>_bias``: with ``bias_lr_mult`` other than 1, the parameters whose name contains
      ``bias`` (CLIP-ReID's rule: linear, norm and attention ``in_proj_bias`` biases), at the
      group's lr times ``bias_lr_mult``;
    - ``<group>_no_decay``: the same at weight decay 0 — always for parameters whose name
      contains one of ``no_decay_keys`` (default: the loss balancer, whose log-variances decay
      would pull towards weight 1), and for norm and bias parameters when
      ``norm_bias_decay=False``.

    Frozen parameters (``requires_grad=False``: the text encoder, blocks outside
    ``unfreeze_blocks``) are in no group, so the optimiser cannot change them (nor decay them).
    The text encoder is left out even if something made it trainable. The groups are printed
    with their parameter counts. Empty groups are dropped.

    Args:
        optim_wrapper_cfg: ``optim_wrapper`` without ``constructor``/``paramwise_cfg``; its
            ``optimizer`` needs ``type`` and ``lr`` (the default for both group lrs);
            ``type`` defaults to ``ReIDOptimWrapper``.
        paramwise_cfg: ``lr_clip_visual``, ``lr_modules``, ``bias_lr_mult`` (default 1),
            ``norm_bias_decay`` (default True), ``no_decay_keys`` (default
            ``('loss_balancer.',)``).
    """

    def __init__(self, optim_wrapper_cfg: dict, paramwise_cfg: dict | None = None) -> None:
        cfg = dict(optim_wrapper_cfg)
        optimizer = cfg.pop('optimizer', None)
        if not isinstance(optimizer, dict) or 'type' not in optimizer:
            raise ConfigError(
                "optim_wrapper.optimizer must be a dict with a 'type', e.g. "
                "dict(type='AdamW', lr=1e-4, weight_decay=5e-4)"
            )
        self.optimizer_cfg = dict(optimizer)
        self.optim_wrapper_cfg = cfg
        self.optim_wrapper_cfg.setdefault('type', 'ReIDOptimWrapper')
        paramwise = dict(paramwise_cfg or {})
        unknown = sorted(set(paramwise) - set(PARAMWISE_KEYS))
        if unknown:
            raise ConfigError(
                f'optim_wrapper.paramwise_cfg has unknown key(s) {unknown}; valid keys: '
                f'{list(PARAMWISE_KEYS)}'
            )
        if 'lr' not in self.optimizer_cfg:
            raise ConfigError('optim_wrapper.optimizer.lr is missing')
        base_lr = _positive('optimizer.lr', self.optimizer_cfg['lr'])
        self.lr_clip_visual = _positive(
            'paramwise_cfg.lr_clip_visual', paramwise.get('lr_clip_visual', base_lr)
        )
        self.lr_modules = _positive(
            'paramwise_cfg.lr_modules', paramwise.get('lr_modules', base_lr)
        )
        self.bias_lr_mult = _positive(
            'paramwise_cfg.bias_lr_mult', paramwise.get('bias_lr_mult', 1.0)
        )
        weight_decay = self.optimizer_cfg.get('weight_decay', 0.0)
        if not isinstance(weight_decay, numbers.Real) or weight_decay < 0:
            raise ConfigError(
                f'optim_wrapper.optimizer.weight_decay must be a number >= 0; got {weight_decay!r}'
            )
        self.weight_decay = float(weight_decay)
        self.norm_bias_decay = bool(paramwise.get('norm_bias_decay', True))
        no_decay = paramwise.get('no_decay_keys', ('loss_balancer.',))
        if isinstance(no_decay, str) or not all(isinstance(k, str) for k in no_decay):
            raise ConfigError(
                f'optim_wrapper.paramwise_cfg.no_decay_keys must be a list of name parts; '
                f'got {no_decay!r}'
            )
        self.no_decay_keys = tuple(no_decay)

    def param_groups(self, model: nn.Module) -> list[dict]:
        """The optimiser's parameter groups for ``model`` (unwrapped from DDP if needed)."""
        if is_model_wrapper(model):
            model = model.module
        exempt = set() if self.norm_bias_decay else norm_and_bias_names(model)
        groups: dict[str, dict] = {}
        for name, param in model.named_parameters():
            if not param.requires_grad or name.startswith(TEXT_PREFIX):
                continue
            part = 'clip_visual' if name.startswith(VISUAL_PREFIX) else 'modules'
            lr = self.lr_clip_visual if part == 'clip_visual' else self.lr_modules
            if self.bias_lr_mult != 1.0 and 'bias' in name:
                part, lr = f'{part}_bias', lr * self.bias_lr_mult
            no_decay = name in exempt or any(k in name for k in self.no_decay_keys)
            key = f'{part}_no_decay' if no_decay else part
            group = groups.setdefault(
                key,
                dict(
                    name=key,
                    lr_key=f'lr_{part}',
                    lr=lr,
                    weight_decay=0.0 if no_decay else self.weight_decay,
                    params=[],
                    param_names=[],
                ),
            )
            group['params'].append(param)
            group['param_names'].append(name)
        order = [
            f'{part}{bias}{decay}'
            for part in ('clip_visual', 'modules')
            for bias in ('', '_bias')
            for decay in ('', '_no_decay')
        ]
        return [groups[k] for k in order if k in groups]

    def __call__(self, model: nn.Module):
        groups = self.param_groups(model)
        if not groups:
            raise ConfigError('the model has no trainable parameters to optimise')
        summary = describe_groups(groups, model)
        for group in groups:
            group.pop('param_names')
        optimizer = OPTIMIZERS.build(dict(self.optimizer_cfg, params=groups))
        print_log(summary, logger='current')
        return OPTIM_WRAPPERS.build(self.optim_wrapper_cfg, default_args=dict(optimizer=optimizer))


def describe_groups(groups: list[dict], model: nn.Module) -> str:
    """A table of the parameter groups (tensors, parameters, lr, weight decay, example names),
    with the count of frozen parameters that no group holds."""
    if is_model_wrapper(model):
        model = model.module
    rows = []
    for g in groups:
        names = g['param_names']
        example = ', '.join(names[:2]) + (', ...' if len(names) > 2 else '')
        numel = sum(p.numel() for p in g['params'])
        rows.append([g['name'], len(names), f'{numel:,}', g['lr'], g['weight_decay'], example])
    held = {id(p) for g in groups for p in g['params']}
    frozen = sum(p.numel() for p in model.parameters() if id(p) not in held)
    table = tabulate(rows, headers=['group', 'tensors', 'params', 'lr', 'weight_decay', 'e.g.'])
    return f'optimiser parameter groups ({frozen:,} frozen parameters in none):\n{table}'
