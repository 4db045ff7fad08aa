"""PromptSG: the image embedding, inverted into a pseudo-token, guides the identity feature."""

from __future__ import annotations

import torch
from torch import Tensor

from promptsg.errors import ConfigError
from promptsg.models.baseline import ReIDBaseline, accepts
from promptsg.registry import MODELS, PROMPT_MODULES

RETRIEVAL_FEATURES = ('mim', 'global', 'concat')
TEST_PROMPTS = ('composed', 'fixed')


@MODELS.register_module()
class PromptSG(ReIDBaseline):
    """Backbone → inversion (s*) → composed prompt → frozen text encoder (l_p) → MIM → neck/head.

    Args:
        inversion: ``InversionNetwork`` config; ``in_dim``/``token_dim`` are filled in.
        prompt: ``PromptComposer`` config (template with one ``{}`` and optional ``{aspect}``).
        fixed_prompt: ``FixedPrompt`` config for fast inference.
        interaction: ``MultimodalInteraction`` config; ``dim`` is filled in.
        retrieval_feature: 'mim' (MIM output), 'global' (backbone) or 'concat' (both, 2D wide).
        test_cfg: adds ``prompt`` = 'fixed' (default, fast) | 'composed' to the base options.
        **kwargs: ``ReIDBaseline`` arguments (backbone, neck, head, losses, ...).
    """

    known_parts = (*ReIDBaseline.known_parts, 'inversion', 'prompt', 'fixed_prompt', 'interaction')

    def __init__(
        self,
        backbone: dict,
        num_classes: int,
        inversion: dict | None = None,
        prompt: dict | None = None,
        fixed_prompt: dict | None = None,
        interaction: dict | None = None,
        retrieval_feature: str = 'mim',
        test_cfg: dict | None = None,
        **kwargs,
    ) -> None:
        if retrieval_feature not in RETRIEVAL_FEATURES:
            raise ConfigError(
                f"model.retrieval_feature '{retrieval_feature}' is not one of {list(RETRIEVAL_FEATURES)}"
            )
        self.retrieval_feature = retrieval_feature
        test_cfg = {'prompt': 'fixed', **(test_cfg or {})}
        if test_cfg['prompt'] not in TEST_PROMPTS:
            raise ConfigError(
                f"model.test_cfg.prompt '{test_cfg['prompt']}' is not one of {list(TEST_PROMPTS)}"
            )
        super().__init__(backbone, num_classes, test_cfg=test_cfg, **kwargs)
        text_encoder = self.backbone.text_encoder
        if text_encoder is None:
            raise ConfigError('PromptSG needs the text encoder: set model.backbone.with_text=True')
        dim = self.backbone.embed_dim
        self._token_norm: tuple[tuple[int, int], Tensor] | None = None
        inversion = inversion or dict(type='InversionNetwork')
        inversion_args = dict(in_dim=dim, token_dim=text_encoder.width)
        if accepts(PROMPT_MODULES, inversion.get('type'), 'token_norm'):
            inversion_args['token_norm'] = float(self.token_embed_norm())
        self.inversion = PROMPT_MODULES.build(inversion, default_args=inversion_args)
        self.prompt = PROMPT_MODULES.build(prompt or dict(type='PromptComposer'))
        self.fixed_prompt = PROMPT_MODULES.build(fixed_prompt or dict(type='FixedPrompt'))
        self.interaction = PROMPT_MODULES.build(
            interaction or dict(type='MultimodalInteraction'), default_args=dict(dim=dim)
        )

    def token_embed_norm(self) -> Tensor:
        """Mean L2 norm of the text encoder's token embeddings (a scalar); recomputed only when
        the (frozen) embedding's weights change, e.g. on a checkpoint load."""
        weight = self.backbone.text_encoder.token_embedding.weight
        key = (weight.data_ptr(), weight._version)
        if self._token_norm is None or self._token_norm[0] != key:
            with torch.no_grad():
                self._token_norm = (key, weight.detach().float().norm(dim=1).mean())
        return self._token_norm[1]

    def log_values(self, feats: dict[str, Tensor]) -> dict[str, Tensor]:
        """``pseudo_token_norm``: mean ||s*|| over the batch, beside ``token_embed_norm``, the
        mean norm of the real token embeddings s* stands in for (detached, not summed)."""
        if 'pseudo_token' not in feats:
            return {}
        norm = feats['pseudo_token'].detach().float().norm(dim=1).mean()
        return {'pseudo_token_norm': norm, 'token_embed_norm': self.token_embed_norm().to(norm)}

    def unused_in_training(self) -> list[str]:
        """As the baseline, plus the MIM (and the inversion) when no loss reaches them."""
        used = self.consumed_features()
        mim = 'mim_feat' in used or ('feat' in used and self.retrieval_feature != 'global')
        prompt = mim or bool({'text_feat', 'pseudo_token'} & used)
        unused = super().unused_in_training()
        unused += [] if mim else ['interaction']
        unused += [] if prompt else ['inversion']
        return unused

    @property
    def feat_dim(self) -> int:
        dim = self.backbone.embed_dim
        return 2 * dim if self.retrieval_feature == 'concat' else dim

    def extract_feat(self, inputs: Tensor, data_samples: dict | None = None) -> dict[str, Tensor]:
        """Features of a batch: ``feat`` (B, D') the retrieval feature, ``img_feat`` v (B, D),
        ``text_feat`` l_p (B, D), ``mim_feat`` (B, D), ``pseudo_token`` s* (B, T)."""
        global_feat, tokens, states = self.run_backbone(inputs, data_samples)
        text_encoder = self.backbone.text_encoder
        aspects = (data_samples or {}).get('aspect')
        out = {'img_feat': global_feat, **states}
        if self.training or self.test_cfg['prompt'] == 'composed':
            out['pseudo_token'] = self.inversion(global_feat)
            text_feat = self.prompt(out['pseudo_token'], text_encoder, aspects)
        else:
            text_feat = self.fixed_prompt(len(inputs), text_encoder, aspects)
            text_feat = text_feat.to(device=global_feat.device, dtype=global_feat.dtype)
        out['text_feat'] = text_feat
        visual = torch.cat([global_feat.unsqueeze(1), tokens], dim=1)
        out['mim_feat'] = self.interaction(text_feat.to(visual.dtype), visual)
        if self.retrieval_feature == 'mim':
            out['feat'] = out['mim_feat']
        elif self.retrieval_feature == 'global':
            out['feat'] = global_feat
        else:  # 'concat', built only when selected
            out['feat'] = torch.cat([out['mim_feat'], global_feat], dim=-1)
        return out
