"""CLIP's frozen text transformer, opened up so a prompt can carry a learned pseudo-token.

The weights never train and the module always runs in eval mode, but it is differentiable: a
pseudo-token placed into ``token_embeds`` receives gradient through ``encode_embeddings``.
"""

from __future__ import annotations

import functools

import open_clip
import torch
from open_clip.model import CLIP
from torch import nn


@functools.lru_cache(maxsize=8)
def _tokenizer(arch: str, context_length: int):
    """open_clip's tokenizer for ``arch``; the default BPE ``SimpleTokenizer`` for other names."""
    if arch in open_clip.list_models():
        return open_clip.get_tokenizer(arch, context_length=context_length)
    return open_clip.SimpleTokenizer(context_length=context_length)


class CLIPTextEncoder(nn.Module):
    """Frozen CLIP text tower: token embedding, positional embedding, transformer, EOT projection.

    Attributes: ``width`` (token embedding width T), ``embed_dim`` (output dim D),
    ``context_length`` (L), ``tokenizer`` (open_clip tokenizer, built on first use).
    """

    def __init__(
        self,
        token_embedding: nn.Embedding,
        positional_embedding: nn.Parameter,
        transformer: nn.Module,
        ln_final: nn.Module,
        text_projection: nn.Parameter | nn.Linear | None,
        attn_mask: torch.Tensor | None,
        arch: str,
    ) -> None:
        super().__init__()
        self.token_embedding = token_embedding
        self.positional_embedding = positional_embedding
        self.transformer = transformer
        self.ln_final = ln_final
        self.text_projection = text_projection
        self.register_buffer('attn_mask', attn_mask, persistent=False)
        self.arch = arch
        self.requires_grad_(False)
        self.eval()

    @classmethod
    def from_clip(cls, clip_model: CLIP, arch: str) -> CLIPTextEncoder:
        """Take (not copy) the text parts of an open_clip ``CLIP``."""
        return cls(
            token_embedding=clip_model.token_embedding,
            positional_embedding=clip_model.positional_embedding,
            transformer=clip_model.transformer,
            ln_final=clip_model.ln_final,
            text_projection=clip_model.text_projection,
            attn_mask=clip_model.attn_mask,
            arch=arch,
        )

    @property
    def width(self) -> int:
        return self.token_embedding.embedding_dim

    @property
    def context_length(self) -> int:
        return self.positional_embedding.shape[0]

    @property
    def embed_dim(self) -> int:
        if self.text_projection is None:
            return self.width
        if isinstance(self.text_projection, nn.Linear):
            return self.text_projection.out_features
        return self.text_projection.shape[1]

    @property
    def tokenizer(self):
        return _tokenizer(self.arch, self.context_length)

    def train(self, mode: bool = True) -> CLIPTextEncoder:
        """Always eval: the text encoder is frozen, whatever its parent's mode."""
        return super().train(False)

    def tokenize(self, texts: list[str]) -> torch.Tensor:
        """BPE token ids (B, L) with SOT/EOT and zero padding, on this module's device."""
        ids = self.tokenizer([texts] if isinstance(texts, str) else list(texts))
        return ids.to(self.token_embedding.weight.device)

    def eot_index(self, token_ids: torch.Tensor) -> torch.Tensor:
        """(B,) position of the EOT token: the largest id in CLIP's BPE vocabulary."""
        return token_ids.argmax(dim=-1)

    def embed_tokens(self, token_ids: torch.Tensor) -> torch.Tensor:
        """Token embedding lookup (B, L) -> (B, L, T)."""
        return self.token_embedding(token_ids)

    def encode_embeddings(
        self, token_embeds: torch.Tensor, eot_index: torch.Tensor
    ) -> torch.Tensor:
        """(B, L, T) token embeddings -> (B, D) text features taken at ``eot_index`` (B,).

        Adds the positional embedding, runs the causal transformer, ln_final, picks the EOT
        position and projects, exactly as open_clip's ``CLIP.encode_text`` (unnormalised).
        """
        batch, length, width = token_embeds.shape
        if width != self.width or length > self.context_length:
            raise ValueError(
                f'token_embeds of shape {tuple(token_embeds.shape)} do not fit the text encoder '
                f'(width {self.width}, context length {self.context_length})'
            )
        dtype = self.transformer.get_cast_dtype()
        x = token_embeds.to(dtype) + self.positional_embedding[:length].to(dtype)
        mask = None if self.attn_mask is None else self.attn_mask[:length, :length]
        x = self.transformer(x, attn_mask=mask)
        x = self.ln_final(x)
        x = x[torch.arange(batch, device=x.device), eot_index.to(x.device)]
        if self.text_projection is None:
            return x
        if isinstance(self.text_projection, nn.Linear):
            return self.text_projection(x)
        return x @ self.text_projection

    def encode_text(self, texts: list[str] | torch.Tensor) -> torch.Tensor:
        """Texts (list of str) or token ids (B, L) -> (B, D) text features."""
        token_ids = texts if isinstance(texts, torch.Tensor) else self.tokenize(texts)
        return self.encode_embeddings(self.embed_tokens(token_ids), self.eot_index(token_ids))
