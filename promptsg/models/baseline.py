"""The plain CLIP ReID model: backbone → (dropout) → neck → head, trained with named losses.

PromptSG (``promptsg.models.promptsg``) extends it by adding the prompt path in
:meth:`ReIDBaseline.extract_feat`; everything else (neck, head, losses, balancing, prediction)
is shared.
"""

from __future__ import annotations

import inspect
import re

import torch
import torch.nn.functional as F
from mmengine.model import BaseModel
from torch import Tensor, nn

from promptsg.errors import ConfigError, DataError
from promptsg.registry import BACKBONES, HEADS, LOSSES, MODELS

#: Which features each built-in loss consumes, by its registered name. A loss config may
#: override this with ``inputs=(...)``; a plugin loss must name its inputs that way.
DEFAULT_LOSS_INPUTS = {
    'CrossEntropyLoss': ('logits', 'pid'),
    'ArcFaceLoss': ('logits', 'pid'),
    'TripletLoss': ('feat', 'pid'),
    'CenterLoss': ('feat', 'pid'),
    'SupConLoss': ('img_feat', 'text_feat', 'pid'),
}
NECK_FEATS = ('before', 'after')
#: ``img_state_<k>``: the backbone's global feature read k blocks before the last (training).
STATE_KEY = re.compile(r'img_state_(\d+)')


def loss_term_name(key: str) -> str:
    """The term a loss configured under ``losses.<key>`` logs as: ``loss_<key>``.

    ``losses.tri_mim`` logs ``loss_tri_mim``; a key that already contains 'loss' is kept.
    An explicit ``loss_name`` in the loss config overrides it.
    """
    return key if 'loss' in key else f'loss_{key}'


def accepts(registry, component_type, arg: str) -> bool:
    """Whether the class ``component_type`` (a registered name or a class) takes ``arg``."""
    try:
        cls = registry.get(component_type) if isinstance(component_type, str) else component_type
        return cls is not None and arg in inspect.signature(cls).parameters
    except (TypeError, ValueError):
        return False


def _trains(model: nn.Module, name: str) -> bool:
    part = getattr(model, name, None)
    return isinstance(part, nn.Module) and any(p.requires_grad for p in part.parameters())


@MODELS.register_module()
class ReIDBaseline(BaseModel):
    """Backbone → neck (e.g. BNNeck) → classifier head, with any set of named losses.

    ``unused_in_training()`` names the trainable parts that no configured loss reaches (the
    DDP wrapper's ``find_unused_parameters='auto'``); a subclass adding trainable parts
    lists the ones it accounts for in ``known_parts``.

    Args:
        backbone: backbone config (``BACKBONES``).
        num_classes: training identities (the config sets it from the data set).
        neck: optional neck config (``HEADS``, e.g. ``BNNeck``); ``in_channels`` is filled in.
        head: optional classifier config (``HEADS``); ``in_channels``/``num_classes`` filled in.
        losses: ``{name: loss config or None (off)}``; each loss logs as ``loss_<name>`` (unless
            its config sets ``loss_name``; two losses logging the same term are a config error)
            and consumes the features named in its
            ``inputs`` (defaults in ``DEFAULT_LOSS_INPUTS``) among ``feat`` (the training feature,
            before the neck), ``neck_feat``, ``logits``, ``img_feat`` (backbone global),
            ``text_feat`` (PromptSG), ``img_state_k`` (the backbone's global feature read k
            blocks before the last, e.g. ``img_state_1``, ``img_state_2``; see the backbone's
            ``forward_states``) and ``pid``.
        loss_balancer: optional balancer config (``LOSSES``, e.g. ``UncertaintyWeighting``).
        feat_dropout: dropout probability on the training feature (active in training only).
        test_cfg: ``neck_feat`` ('before' | 'after' the neck) and ``flip`` (average the image and
            its horizontal flip).
    """

    known_parts = (
        'data_preprocessor',
        'backbone',
        'neck',
        'head',
        'feat_dropout',
        'losses',
        'loss_balancer',
    )

    def __init__(
        self,
        backbone: dict,
        num_classes: int,
        neck: dict | None = None,
        head: dict | None = None,
        losses: dict | None = None,
        loss_balancer: dict | None = None,
        feat_dropout: float = 0.0,
        test_cfg: dict | None = None,
        data_preprocessor: dict | None = None,
        init_cfg: dict | None = None,
    ) -> None:
        if data_preprocessor is None:
            data_preprocessor = dict(type='ReIDDataPreprocessor')
        if isinstance(data_preprocessor, dict):  # our registry: builds with or without a scope
            data_preprocessor = MODELS.build(data_preprocessor)
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.backbone = BACKBONES.build(backbone)
        self.num_classes = num_classes
        self.neck = (
            HEADS.build(neck, default_args=dict(in_channels=self.feat_dim)) if neck else None
        )
        head_in = getattr(self.neck, 'out_channels', self.feat_dim)
        self.head = (
            HEADS.build(head, default_args=dict(in_channels=head_in, num_classes=num_classes))
            if head
            else None
        )
        self._head_takes_labels = self.head is not None and (
            'labels' in inspect.signature(self.head.forward).parameters
        )
        self.feat_dropout = nn.Dropout(feat_dropout)
        self.losses = nn.ModuleDict()
        self.loss_inputs: dict[str, tuple[str, ...]] = {}
        for name, cfg in (losses or {}).items():
            if cfg is None:  # a version config switches a loss off with `name=None`
                continue
            cfg = dict(cfg)
            inputs = cfg.pop('inputs', None) or DEFAULT_LOSS_INPUTS.get(cfg.get('type'))
            if inputs is None and isinstance(cfg.get('type'), str):
                LOSSES.get(cfg['type'])  # an unknown (misspelled) type is named as such first
            if inputs is None:
                raise ConfigError(
                    f"losses.{name}: loss '{cfg.get('type')}' needs inputs=(...) naming the "
                    f'features it takes, e.g. {DEFAULT_LOSS_INPUTS["TripletLoss"]}'
                )
            if cfg.get('type') == 'CenterLoss':
                cfg.setdefault('num_classes', num_classes)
                cfg.setdefault('feat_dim', self.feat_dim)
            if accepts(LOSSES, cfg.get('type'), 'loss_name'):
                cfg.setdefault('loss_name', loss_term_name(name))
                clash = [
                    k
                    for k, m in self.losses.items()
                    if getattr(m, 'loss_name', None) == cfg['loss_name']
                ]
                if clash:
                    raise ConfigError(
                        f"losses.{name} and losses.{clash[0]} both log as '{cfg['loss_name']}': "
                        'give one of them another loss_name (or drop its loss_name to log '
                        'under its config key)'
                    )
            self.losses[name] = LOSSES.build(cfg)
            self.loss_inputs[name] = tuple(inputs)
        if not self.losses:
            raise ConfigError('model.losses is empty: name at least one loss')
        self.visual_states = sorted(
            {
                int(match.group(1))
                for inputs in self.loss_inputs.values()
                for key in inputs
                if (match := STATE_KEY.fullmatch(key))
            }
        )
        if self.visual_states:
            if not hasattr(self.backbone, 'forward_states'):
                raise ConfigError(
                    f'losses take {[f"img_state_{k}" for k in self.visual_states]}, but backbone '
                    f'{type(self.backbone).__name__} has no forward_states'
                )
            self.backbone.check_states(self.visual_states)
        self.loss_balancer = LOSSES.build(loss_balancer) if loss_balancer else None
        self.test_cfg = {'neck_feat': 'before', 'flip': False, **(test_cfg or {})}
        if self.test_cfg['neck_feat'] not in NECK_FEATS:
            raise ConfigError(
                f"model.test_cfg.neck_feat '{self.test_cfg['neck_feat']}' is not one of {NECK_FEATS}"
            )
        if self.test_cfg['neck_feat'] == 'after' and self.neck is None:
            raise ConfigError("model.test_cfg.neck_feat='after' needs a neck")

    def init_weights(self) -> None:
        """Initialise new parts; the backbone's (possibly pretrained) CLIP weights are kept.

        The Runner calls this after building the model; an ``init_cfg`` on the model would
        otherwise reach the backbone and overwrite the loaded weights. The backbone is detached
        while the rest initialises, so no second copy of CLIP is held.
        """
        modules = dict(self._modules)
        del self._modules['backbone']  # out of reach while the rest initialises; no copy held
        try:
            super().init_weights()
        finally:
            self._modules.clear()
            self._modules.update(modules)  # same order, so state-dict keys keep their order

    def consumed_features(self) -> set[str]:
        """The features the configured losses take (``loss_inputs``), with what feeds them:
        ``logits`` needs ``neck_feat``, which needs ``feat``."""
        used = {k for inputs in self.loss_inputs.values() for k in inputs}
        if 'logits' in used:
            used.add('neck_feat')
        if 'neck_feat' in used:
            used.add('feat')
        return used

    def unused_in_training(self) -> list[str]:
        """Trainable parts that no configured loss reaches (e.g. a head whose loss is off):
        under DDP they need ``find_unused_parameters``."""
        used = self.consumed_features()
        parts = {'head': 'logits' in used, 'neck': 'neck_feat' in used}
        unused = [name for name, reached in parts.items() if not reached and _trains(self, name)]
        # a subclass's own trainable parts, unknown here, count as possibly unused
        return unused + [n for n in self._modules if n not in self.known_parts and _trains(self, n)]

    @property
    def feat_dim(self) -> int:
        """Width of the training/retrieval feature before the neck."""
        return self.backbone.embed_dim

    def set_epoch(self, epoch: int) -> None:
        """Tell epoch-dependent parts (loss-weight ramps) the current epoch."""
        for module in (self.loss_balancer, *self.losses.values()):
            if hasattr(module, 'set_epoch'):
                module.set_epoch(epoch)

    @property
    def sie_cameras(self) -> int:
        """Cameras the backbone's SIE embeds; 0 when the model takes no camera id."""
        if not getattr(self.backbone, 'sie_enabled', False):
            return 0
        return int(getattr(self.backbone, 'sie_cameras', 0))

    def side_info(self, data_samples: dict | None) -> dict:
        """Backbone keyword arguments ``camid`` (and ``viewid``) (B,) when its SIE is on.

        Without ``data_samples`` the backbone runs as the plain encoder (no SIE offset).

        Raises:
            DataError: the SIE embeds cameras and ``data_samples`` carries no ``camid``.
        """
        if not getattr(self.backbone, 'sie_enabled', False) or not data_samples:
            return {}
        if self.sie_cameras and 'camid' not in data_samples:
            raise DataError(
                f'the backbone adds a camera embedding (SIE over {self.sie_cameras} cameras) '
                "but the batch's data_samples carry no camid"
            )
        side = {'camid': torch.as_tensor(data_samples['camid'])} if self.sie_cameras else {}
        if 'viewid' in data_samples:
            side['viewid'] = torch.as_tensor(data_samples['viewid'])
        return side

    def run_backbone(
        self, inputs: Tensor, data_samples: dict | None = None
    ) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        """Global (B, D), tokens (B, N, D) and, in training when a loss takes them, the
        intermediate states ``{'img_state_k': (B, D)}``; SIE ids go to the backbone."""
        side = self.side_info(data_samples)
        if not (self.training and self.visual_states):
            return (*self.backbone(inputs, **side), {})
        global_feat, tokens, states = self.backbone.forward_states(
            inputs, self.visual_states, **side
        )
        return global_feat, tokens, {f'img_state_{k}': v for k, v in states.items()}

    def extract_feat(self, inputs: Tensor, data_samples: dict | None = None) -> dict[str, Tensor]:
        """Return ``{'feat': (B, D) retrieval feature, 'img_feat': (B, D) backbone global}``
        (plus the ``img_state_k`` that losses take, in training)."""
        global_feat, _, states = self.run_backbone(inputs, data_samples)
        return {'feat': global_feat, 'img_feat': global_feat, **states}

    def forward(self, inputs: Tensor, data_samples: dict | None = None, mode: str = 'tensor'):
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        if mode == 'tensor':
            return self.embed(inputs, data_samples)
        raise ConfigError(f"model mode '{mode}' is not one of ['loss', 'predict', 'tensor']")

    def loss(self, inputs: Tensor, data_samples: dict) -> dict[str, Tensor]:
        feats = self.extract_feat(inputs, data_samples)
        feats['pid'] = data_samples['pid']
        feats['feat'] = self.feat_dropout(feats['feat'])
        feats['neck_feat'] = self.neck(feats['feat']) if self.neck is not None else feats['feat']
        if self.head is not None:
            if self._head_takes_labels:
                feats['logits'] = self.head(feats['neck_feat'], feats['pid'])
            else:
                feats['logits'] = self.head(feats['neck_feat'])
        losses: dict[str, Tensor] = {}
        for name, loss in self.losses.items():
            missing = [k for k in self.loss_inputs[name] if k not in feats]
            if missing:
                raise ConfigError(
                    f'losses.{name} needs {missing}, which this model does not produce '
                    f'(it has {sorted(feats)})'
                )
            terms = loss(*(feats[k] for k in self.loss_inputs[name]))
            clash = sorted(set(terms) & set(losses))
            if clash:
                raise ConfigError(
                    f'losses.{name} returns {clash}, which another loss already returned: '
                    'give it another loss_name'
                )
            losses.update(terms)
        if self.loss_balancer is not None:
            losses = self.loss_balancer(losses)
        losses.update(self.log_values(feats))
        return losses

    def log_values(self, feats: dict[str, Tensor]) -> dict[str, Tensor]:
        """Detached training figures logged beside the losses (keys without 'loss')."""
        return {}

    def embed(self, inputs: Tensor, data_samples: dict | None = None) -> Tensor:
        """Retrieval features (B, D'), L2-normalised; flip-averaged when ``test_cfg.flip``."""
        feat = self._embed_once(inputs, data_samples)
        if self.test_cfg['flip']:
            feat = feat + self._embed_once(inputs.flip(-1), data_samples)
        return F.normalize(feat, dim=-1)

    def _embed_once(self, inputs: Tensor, data_samples: dict | None) -> Tensor:
        feat = self.extract_feat(inputs, data_samples)['feat']
        if self.test_cfg['neck_feat'] == 'after':
            feat = self.neck(feat)
        return F.normalize(feat, dim=-1)

    def predict(self, inputs: Tensor, data_samples: dict) -> list[dict]:
        """One record per sample: ``{'feat': (D,), 'pid', 'camid', 'sample_idx', 'is_query'}``."""
        feat = self.embed(inputs, data_samples).float().cpu()
        keys = ('pid', 'camid', 'sample_idx', 'is_query')
        cols = {k: torch.as_tensor(data_samples[k]).cpu().tolist() for k in keys}
        return [{'feat': feat[i], **{k: cols[k][i] for k in keys}} for i in range(len(feat))]
