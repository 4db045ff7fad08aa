"""CLIP-ReID (Li et al., AAAI 2023): identity prompts learned first, then the image encoder.

Stage ``'prompt'``: only the prompt learner trains; the image encoder is frozen (its features
are taken without gradient, from a cache filled once when the stage begins, or computed per
batch) and the frozen text encoder encodes each sample's identity prompt; the image↔text
contrastive losses (``prompt_losses``) train the prompts.

Stage ``'image'``: every identity's text feature is computed once when the stage begins and
cached (``text_bank``, C × D); the image encoder, neck and head train with ``losses`` (ID,
triplet and the image→text cross-entropy against the cache). The prompts are never updated.

``TrainingStagesHook`` switches the stage (and the optimiser) at the configured epoch.

``official_heads=True`` adds the official code's second branch: the image feature before the
projection (ViT: the CLS after ln_post; RN50: layer4 average-pooled) gets its own neck and
classifier (``logits_pre``), losses can also take it (``feat_pre``) and the raw feature one stage
earlier (``feat_inner``: ViT's CLS after the block before the last; RN50's layer3, pooled), and
the retrieval feature is the concatenation ``[pre-projection, projected]`` (1280-d for
ViT-B/16, 3072-d for RN50), L2-normalised as a whole.
"""

from __future__ import annotations

import inspect

import torch
import torch.nn.functional as F
from mmengine.logging import print_log
from torch import Tensor, nn

from promptsg.errors import ConfigError
from promptsg.models.baseline import DEFAULT_LOSS_INPUTS, ReIDBaseline
from promptsg.registry import HEADS, LOSSES, MODELS, PROMPT_MODULES

STAGES = ('prompt', 'image')
#: The features the CLIP-ReID losses consume (a loss config's ``inputs`` overrides them).
CLIP_REID_LOSS_INPUTS = {
    'ImageTextContrastiveLoss': ('img_feat', 'text_feat', 'pid'),
    'ImageToTextCELoss': ('img_feat', 'text_bank', 'pid'),
}


def _with_inputs(losses: dict | None) -> dict:
    """Loss configs with ``inputs`` filled in for the CLIP-ReID loss types."""
    out = {}
    for name, cfg in (losses or {}).items():
        if cfg is not None and 'inputs' not in cfg and cfg.get('type') in CLIP_REID_LOSS_INPUTS:
            cfg = dict(cfg, inputs=CLIP_REID_LOSS_INPUTS[cfg['type']])
        out[name] = cfg
    return out


@MODELS.register_module()
class CLIPReID(ReIDBaseline):
    """The two-stage CLIP-ReID model on a CLIP backbone (``with_text=True``).

    Args:
        backbone: ``CLIPViT`` / ``CLIPResNet`` config; SIE (camera embedding) receives each
            sample's ``camid`` when the backbone has it switched on.
        num_classes: training identities C.
        prompt_learner: ``IdentityPromptLearner`` config (``num_classes``/``token_dim`` filled).
        prompt_losses: stage-1 losses, default ``ImageTextContrastiveLoss``.
        losses: stage-2 losses (``ReIDBaseline``'s), e.g. CE + triplet + ``ImageToTextCELoss``
            (which reads ``text_bank``).
        text_batch_size: identities encoded per text-encoder call when the cache is built.
        stage: the stage before any ``set_stage`` call.
        official_heads: the official two-branch heads (module docstring): a second neck and
            classifier built from ``neck``/``head`` on the pre-projection feature, which both
            need; the retrieval feature concatenates the two branches.
        **kwargs: other ``ReIDBaseline`` arguments (neck, head, test_cfg, ...).

    The retrieval feature is the backbone's global feature (CLS after ln_post and proj for ViT,
    attention-pool output for RN50), as in ``ReIDBaseline``, unless ``official_heads``.
    """

    known_parts = (*ReIDBaseline.known_parts, 'neck_pre', 'head_pre')

    def __init__(
        self,
        backbone: dict,
        num_classes: int,
        prompt_learner: dict | None = None,
        prompt_losses: dict | None = None,
        losses: dict | None = None,
        text_batch_size: int = 64,
        stage: str = 'prompt',
        official_heads: bool = False,
        **kwargs,
    ) -> None:
        super().__init__(backbone, num_classes, losses=_with_inputs(losses), **kwargs)
        self.official_heads = bool(official_heads)
        self.neck_pre = self.head_pre = None
        if self.official_heads:
            self._build_pre_branch(kwargs.get('neck'), kwargs.get('head'), num_classes)
        text_encoder = self.backbone.text_encoder
        if text_encoder is None:
            raise ConfigError('CLIPReID needs the text encoder: set model.backbone.with_text=True')
        if text_encoder.embed_dim != self.backbone.embed_dim:
            raise ConfigError(
                f'CLIPReID: text features ({text_encoder.embed_dim}-d) and image features '
                f'({self.backbone.embed_dim}-d) must share CLIP’s joint space'
            )
        self.prompt_learner = PROMPT_MODULES.build(
            prompt_learner or dict(type='IdentityPromptLearner'),
            default_args=dict(num_classes=num_classes, token_dim=text_encoder.width),
        )
        prompt_losses = _with_inputs(
            prompt_losses or dict(i2t_t2i=dict(type='ImageTextContrastiveLoss'))
        )
        self.prompt_losses = nn.ModuleDict()
        self.prompt_loss_inputs: dict[str, tuple[str, ...]] = {}
        for name, cfg in prompt_losses.items():
            if cfg is None:
                continue
            cfg = dict(cfg)
            inputs = cfg.pop('inputs', None) or DEFAULT_LOSS_INPUTS.get(cfg.get('type'))
            if inputs is None:
                raise ConfigError(
                    f"prompt_losses.{name}: loss '{cfg.get('type')}' needs inputs=(...) from "
                    "('img_feat', 'text_feat', 'pid')"
                )
            self.prompt_losses[name] = LOSSES.build(cfg)
            self.prompt_loss_inputs[name] = tuple(inputs)
        if not self.prompt_losses:
            raise ConfigError('model.prompt_losses is empty: name at least one stage-1 loss')
        if isinstance(text_batch_size, bool) or not isinstance(text_batch_size, int):
            raise ConfigError(f'model.text_batch_size must be an int >= 1; got {text_batch_size!r}')
        if text_batch_size < 1:
            raise ConfigError(f'model.text_batch_size must be an int >= 1; got {text_batch_size}')
        self.text_batch_size = text_batch_size
        self.register_buffer('text_bank', None, persistent=False)
        self._img_cache: dict[int, Tensor] = {}
        self.stage = self._check_stage(stage)

    def _build_pre_branch(self, neck: dict | None, head: dict | None, num_classes: int) -> None:
        """The second neck + classifier, on the backbone's pre-projection feature."""
        if not hasattr(self.backbone, 'forward_branches'):
            raise ConfigError(
                f'CLIPReID official_heads: backbone {type(self.backbone).__name__} has no '
                'forward_branches (CLIPViT and CLIPResNet have)'
            )
        if not neck or not head:
            raise ConfigError('CLIPReID official_heads needs model.neck and model.head')
        dim = self.backbone.branch_dims['pre_proj']
        self.neck_pre = HEADS.build(neck, default_args=dict(in_channels=dim))
        self.head_pre = HEADS.build(
            head,
            default_args=dict(
                in_channels=getattr(self.neck_pre, 'out_channels', dim), num_classes=num_classes
            ),
        )
        self._head_pre_takes_labels = (
            'labels' in inspect.signature(self.head_pre.forward).parameters
        )

    def consumed_features(self) -> set[str]:
        used = super().consumed_features()
        if 'logits_pre' in used:
            used.add('feat_pre')
        return used

    def unused_in_training(self) -> list[str]:
        unused = super().unused_in_training()
        if self.official_heads and 'logits_pre' not in self.consumed_features():
            unused += ['neck_pre', 'head_pre']
        return unused

    @staticmethod
    def _check_stage(stage: str) -> str:
        if stage not in STAGES:
            raise ConfigError(f"CLIPReID stage '{stage}' is not one of {list(STAGES)}")
        return stage

    # -- stages ----------------------------------------------------------------------------
    def set_stage(self, stage: str, feature_loader=None) -> None:
        """Enter ``stage``: 'prompt' fills the image-feature cache from ``feature_loader`` (if
        given); 'image' computes every identity's text feature once (``text_bank``)."""
        self.stage = self._check_stage(stage)
        self._img_cache = {}
        self.text_bank = None
        if stage == 'prompt' and feature_loader is not None:
            self.cache_image_features(feature_loader)
        if stage == 'image':
            self.cache_text_features()

    @torch.no_grad()
    def cache_text_features(self) -> Tensor:
        """``text_bank`` (C, D): the text feature of every identity's prompt, row = pid."""
        device = self.prompt_learner.identity_ctx.device
        pids = torch.arange(self.num_classes, device=device)
        text_encoder = self.backbone.text_encoder
        feats = [
            self.prompt_learner(chunk, text_encoder) for chunk in pids.split(self.text_batch_size)
        ]
        self.text_bank = torch.cat(feats).float()
        print_log(f'CLIPReID: cached the text features of {self.num_classes} identities', 'current')
        return self.text_bank

    @torch.no_grad()
    def cache_image_features(self, loader) -> int:
        """Frozen image features of every sample ``loader`` yields, by ``sample_idx``;
        returns how many are cached."""
        was_training = self.backbone.training
        self.backbone.eval()
        try:
            for data in loader:
                data = self.data_preprocessor(data, False)
                feats = self.backbone(data['inputs'])[0].float()
                for idx, feat in zip(data['data_samples']['sample_idx'].tolist(), feats):
                    self._img_cache[int(idx)] = feat
        finally:
            self.backbone.train(was_training)
        print_log(f'CLIPReID: cached {len(self._img_cache)} frozen image features', 'current')
        return len(self._img_cache)

    @torch.no_grad()
    def _frozen_img_feat(self, inputs: Tensor, data_samples: dict) -> Tensor:
        """(B, D) image features without gradient: from the cache when it holds every sample,
        else from the backbone in eval mode (no SIE, as in the official stage 1)."""
        idx = [int(i) for i in torch.as_tensor(data_samples['sample_idx']).tolist()]
        if self._img_cache and all(i in self._img_cache for i in idx):
            return torch.stack([self._img_cache[i] for i in idx]).to(inputs.device)
        was_training = self.backbone.training
        self.backbone.eval()
        try:
            return self.backbone(inputs)[0].float()
        finally:
            self.backbone.train(was_training)

    # -- forward ---------------------------------------------------------------------------
    def extract_feat(self, inputs: Tensor, data_samples: dict | None = None) -> dict[str, Tensor]:
        """``feat``/``img_feat`` (B, D) backbone global feature; ``text_bank`` (C, D) in
        training. With ``official_heads`` also ``feat_pre`` (B, W), and in training
        ``feat_inner`` and the second branch's ``neck_feat_pre`` and ``logits_pre`` (B, C)."""
        side = self.side_info(data_samples)
        if self.official_heads:
            branches = self.backbone.forward_branches(inputs, **side)
            global_feat = branches['global']
            out = {'feat': global_feat, 'img_feat': global_feat, 'feat_pre': branches['pre_proj']}
            if self.training:
                out['feat_inner'] = branches['inner']
                out['neck_feat_pre'] = self.neck_pre(branches['pre_proj'])
                if self._head_pre_takes_labels:
                    pid = torch.as_tensor(data_samples['pid']).to(inputs.device)
                    out['logits_pre'] = self.head_pre(out['neck_feat_pre'], pid)
                else:
                    out['logits_pre'] = self.head_pre(out['neck_feat_pre'])
        else:
            global_feat, _ = self.backbone(inputs, **side)
            out = {'feat': global_feat, 'img_feat': global_feat}
        if self.training and self.text_bank is not None:
            out['text_bank'] = self.text_bank
        return out

    def _embed_once(self, inputs: Tensor, data_samples: dict | None) -> Tensor:
        """With ``official_heads``: ``[pre-projection, projected]`` (B, W + D), normalised as
        a whole (each part through its neck with ``test_cfg.neck_feat='after'``)."""
        if not self.official_heads:
            return super()._embed_once(inputs, data_samples)
        feats = self.extract_feat(inputs, data_samples)
        pre, proj = feats['feat_pre'], feats['feat']
        if self.test_cfg['neck_feat'] == 'after':
            pre, proj = self.neck_pre(pre), self.neck(proj)
        return F.normalize(torch.cat([pre, proj], dim=-1), dim=-1)

    def loss(self, inputs: Tensor, data_samples: dict) -> dict[str, Tensor]:
        if self.stage == 'prompt':
            return self._prompt_loss(inputs, data_samples)
        if self.text_bank is None:
            self.cache_text_features()
        return super().loss(inputs, data_samples)

    def _prompt_loss(self, inputs: Tensor, data_samples: dict) -> dict[str, Tensor]:
        pid = torch.as_tensor(data_samples['pid']).to(inputs.device)
        feats = {
            'img_feat': self._frozen_img_feat(inputs, data_samples),
            'text_feat': self.prompt_learner(pid, self.backbone.text_encoder),
            'pid': pid,
        }
        losses: dict[str, Tensor] = {}
        for name, loss in self.prompt_losses.items():
            missing = [k for k in self.prompt_loss_inputs[name] if k not in feats]
            if missing:
                raise ConfigError(
                    f'prompt_losses.{name} needs {missing}; stage 1 has {sorted(feats)}'
                )
            losses.update(loss(*(feats[k] for k in self.prompt_loss_inputs[name])))
        return losses
