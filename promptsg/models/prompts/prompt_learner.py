"""CLIP-ReID's identity prompts: "A photo of a X X X X person." with learned X per identity."""

from __future__ import annotations

import string

import torch
from torch import Tensor, nn

from promptsg.errors import ConfigError
from promptsg.registry import PROMPT_MODULES

#: The word tokenised at each learned position (as in the official code); its embedding is
#: replaced by the learned context.
PLACEHOLDER = 'X'


def _positive_int(key: str, value, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(
            f'IdentityPromptLearner: {key} must be an int >= {minimum}; got {value!r}'
        )
    return value


@PROMPT_MODULES.register_module()
class IdentityPromptLearner(nn.Module):
    """Learned text tokens per identity (CLIP-ReID stage 1), encoded by the frozen text encoder.

    The template has one ``{}`` slot, filled with ``num_shared_ctx`` learned tokens shared by
    every identity (optional, CoOp-style) followed by ``num_tokens`` learned tokens of the
    identity: "A photo of a [S]... X1 X2 X3 X4 person." ``{aspect}`` (e.g. "dorsal right") is
    filled from ``aspect`` once. The tokens live in the text encoder's token-embedding space
    (width T) and start from N(0, ``init_std``²) as in the official code.

    Args:
        num_classes: training identities C (filled in by the model).
        token_dim: token-embedding width T (filled in by the model).
        template: prompt with exactly one ``{}`` and optionally ``{aspect}``.
        num_tokens: identity-specific tokens per identity (official: 4).
        num_shared_ctx: shared learned tokens before them (official: 0).
        aspect: text for ``{aspect}``.
        init_std: standard deviation of the initial tokens.
    """

    def __init__(
        self,
        num_classes: int,
        token_dim: int,
        template: str = 'A photo of a {} person.',
        num_tokens: int = 4,
        num_shared_ctx: int = 0,
        aspect: str = '',
        init_std: float = 0.02,
    ) -> None:
        super().__init__()
        try:
            fields = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
        except ValueError as e:
            raise ConfigError(f'prompt template {template!r} is malformed: {e}') from e
        if fields.count('') != 1 or any(f not in ('', 'aspect') for f in fields):
            raise ConfigError(
                f'IdentityPromptLearner: template {template!r} must have exactly one {{}} slot '
                f'(and optionally {{aspect}}); it has fields {fields}'
            )
        self.num_classes = _positive_int('num_classes', num_classes)
        self.num_tokens = _positive_int('num_tokens', num_tokens)
        self.num_shared_ctx = _positive_int('num_shared_ctx', num_shared_ctx, minimum=0)
        self.template = template.replace('{aspect}', aspect)
        self.identity_ctx = nn.Parameter(torch.randn(num_classes, num_tokens, token_dim) * init_std)
        self.shared_ctx = (
            nn.Parameter(torch.randn(num_shared_ctx, token_dim) * init_std)
            if num_shared_ctx
            else None
        )
        self._ids: Tensor | None = None  # (1, L) prompt ids with placeholders at the slot
        self._start = 0

    @property
    def num_ctx(self) -> int:
        """Learned positions in the prompt: shared plus identity tokens."""
        return self.num_shared_ctx + self.num_tokens

    def _inner(self, text: str, text_encoder: nn.Module) -> tuple[list[int], int, int]:
        ids = text_encoder.tokenize([text])[0]
        end = int(text_encoder.eot_index(ids[None])[0])
        return ids[1:end].tolist(), int(ids[0]), int(ids[end])

    def token_ids(self, text_encoder: nn.Module) -> tuple[Tensor, int]:
        """Prompt token ids (1, L), placeholders at the slot, and the slot's first index."""
        if self._ids is None:
            prefix, suffix = self.template.split('{}')
            pre, sot, eot = self._inner(prefix, text_encoder)
            suf = self._inner(suffix, text_encoder)[0]
            placeholder = self._inner(PLACEHOLDER, text_encoder)[0]
            row = [sot, *pre, *placeholder * self.num_ctx, *suf, eot]
            if len(row) > text_encoder.context_length:
                raise ConfigError(
                    f'IdentityPromptLearner: the prompt is {len(row)} tokens, longer than the '
                    f"text encoder's context length {text_encoder.context_length}"
                )
            ids = torch.zeros(1, text_encoder.context_length, dtype=torch.long)
            ids[0, : len(row)] = torch.tensor(row)
            self._ids, self._start = ids, 1 + len(pre)
        return self._ids, self._start

    def forward(self, pids: Tensor, text_encoder: nn.Module) -> Tensor:
        """``pids (B,)`` in ``[0, C)`` -> text features (B, D) of their prompts."""
        ids, start = self.token_ids(text_encoder)
        ids = ids.to(self.identity_ctx.device)
        batch = len(pids)
        embeds = text_encoder.embed_tokens(ids).to(self.identity_ctx.dtype).expand(batch, -1, -1)
        ctx = self.identity_ctx[pids.to(self.identity_ctx.device).long()]
        if self.shared_ctx is not None:
            ctx = torch.cat([self.shared_ctx.expand(batch, -1, -1), ctx], dim=1)
        embeds = torch.cat([embeds[:, :start], ctx, embeds[:, start + self.num_ctx :]], dim=1)
        eot = text_encoder.eot_index(ids).expand(batch)
        return text_encoder.encode_embeddings(embeds, eot)
