"""The Multimodal Interaction Module (MIM): the prompt's text feature attends to the image."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from promptsg.errors import ConfigError
from promptsg.registry import PROMPT_MODULES


class _FeedForward(nn.Sequential):
    def __init__(self, width: int, mlp_ratio: float, dropout: float) -> None:
        hidden = int(width * mlp_ratio)
        super().__init__(
            nn.Linear(width, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, width)
        )


class CrossAttentionBlock(nn.Module):
    """Pre-norm cross-attention (query ← keys/values) then feed-forward, each with a residual."""

    def __init__(self, width: int, num_heads: int, mlp_ratio: float, dropout: float) -> None:
        super().__init__()
        self.norm_q, self.norm_kv = nn.LayerNorm(width), nn.LayerNorm(width)
        self.attn = nn.MultiheadAttention(width, num_heads, dropout=dropout, batch_first=True)
        self.norm_ff = nn.LayerNorm(width)
        self.ff = _FeedForward(width, mlp_ratio, dropout)

    def forward(
        self, query: Tensor, kv: Tensor, need_weights: bool = False
    ) -> tuple[Tensor, Tensor | None]:
        """``query`` (B, Q, W), ``kv`` (B, N, W) → (B, Q, W) and, when ``need_weights``, the
        attention weights (B, Q, N); without them the fused attention kernel can run."""
        kv = self.norm_kv(kv)
        out, weights = self.attn(self.norm_q(query), kv, kv, need_weights=need_weights)
        query = query + out
        return query + self.ff(self.norm_ff(query)), weights


class SelfAttentionBlock(nn.Module):
    """Pre-norm self-attention then feed-forward, each with a residual."""

    def __init__(self, width: int, num_heads: int, mlp_ratio: float, dropout: float) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.attn = nn.MultiheadAttention(width, num_heads, dropout=dropout, batch_first=True)
        self.norm_ff = nn.LayerNorm(width)
        self.ff = _FeedForward(width, mlp_ratio, dropout)

    def forward(self, x: Tensor) -> Tensor:
        h = self.norm(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        return x + self.ff(self.norm_ff(x))


@PROMPT_MODULES.register_module()
class MultimodalInteraction(nn.Module):
    """PromptSG's MIM: cross-attention from the text feature to the image, then self-attention.

    Reading implemented: the prompt's text feature l_p (B, D) is the single query of
    ``num_cross_layers`` cross-attention blocks over the visual tokens [v, v_1..v_M] (B, 1+M, D).
    The paper's following self-attention blocks would have nothing to mix over one token (softmax
    over a single key is 1), so ``num_self_layers`` blocks run over the sequence
    [attended query, v, v_1..v_M] and the output is the query position (B, D). Every block is
    pre-norm with residuals and a feed-forward. ``width`` (default D) adds input/output
    projections when it differs from D. ``keep_attention`` keeps the cross-attention weights
    for inspection (``last_attention``).
    """

    def __init__(
        self,
        dim: int,
        width: int | None = None,
        num_heads: int = 8,
        num_cross_layers: int = 1,
        num_self_layers: int = 2,
        mlp_ratio: float = 4.0,
        dropout: float = 0.0,
        keep_attention: bool = False,
    ) -> None:
        super().__init__()
        self.keep_attention = keep_attention
        width = width or dim
        if width % num_heads:
            raise ConfigError(
                f'interaction width ({width}) must be divisible by num_heads ({num_heads})'
            )
        if num_cross_layers < 1 or num_self_layers < 0:
            raise ConfigError('interaction needs num_cross_layers >= 1 and num_self_layers >= 0')
        self.proj_in = nn.Identity() if width == dim else nn.Linear(dim, width)
        self.proj_out = nn.Identity() if width == dim else nn.Linear(width, dim)
        self.cross = nn.ModuleList(
            CrossAttentionBlock(width, num_heads, mlp_ratio, dropout)
            for _ in range(num_cross_layers)
        )
        self.self_blocks = nn.ModuleList(
            SelfAttentionBlock(width, num_heads, mlp_ratio, dropout) for _ in range(num_self_layers)
        )
        self.norm_out = nn.LayerNorm(width)
        self.last_attention: Tensor | None = None

    def forward(self, text_feat: Tensor, visual_tokens: Tensor) -> Tensor:
        """``text_feat`` (B, D), ``visual_tokens`` (B, 1+M, D) → interaction feature (B, D).

        With ``keep_attention`` the last cross-attention's weights (B, 1, 1+M) are kept in
        ``last_attention`` (off by default, so the fused attention kernels can run).
        """
        query = self.proj_in(text_feat).unsqueeze(1)
        kv = self.proj_in(visual_tokens)
        for block in self.cross:
            query, weights = block(query, kv, need_weights=self.keep_attention)
            if weights is not None:
                self.last_attention = weights.detach()
        if self.self_blocks:
            x = torch.cat([query, kv], dim=1)
            for block in self.self_blocks:
                x = block(x)
            query = x[:, :1]
        return self.proj_out(self.norm_out(query[:, 0]))
