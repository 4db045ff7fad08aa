"""Supervised contrastive loss between image features and prompt text features (PromptSG)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from promptsg.errors import ConfigError
from promptsg.losses.base import WeightedLoss, figure_name
from promptsg.registry import LOSSES

_COMBINE = ('sum', 'mean')


def supcon_direction(logits: Tensor, positive: Tensor) -> Tensor:
    """One direction: ``mean_i −mean_{p∈P(i)} log softmax_j(logits_ij)[p]``.

    ``logits (B, N)`` anchors × candidates; ``positive (B, N)`` bool, every row non-empty.
    """
    log_prob = logits.log_softmax(dim=1)
    positive = positive.to(log_prob.dtype)
    return (-(log_prob * positive).sum(1) / positive.sum(1)).mean()


@LOSSES.register_module()
class SupConLoss(WeightedLoss):
    """Image↔text supervised contrastive loss; same pid = positive pair.

    Both features are L2-normalised; ``s_ij = cos(v_i, l_j) / temperature``.
    image→text: ``L_i2t = mean_i −(1/|P(i)|) Σ_{p∈P(i)} log(exp s_ip / Σ_j exp s_ij)``, over the
    texts of the batch; text→image ``L_t2i`` is the same on the transposed similarities.
    ``symmetric=True`` gives ``L_i2t + L_t2i`` (``combine='sum'``, the paper's form, whose
    λ = 0.5 then weighs each direction by 0.5) or their average (``combine='mean'``);
    ``symmetric=False`` gives ``L_i2t`` only. Image i's own text is always a positive.
    The directions are also logged, unweighted and detached, as ``<name>_i2t`` / ``_t2i``
    (names without 'loss', so not summed twice).
    """

    def __init__(
        self,
        temperature: float = 0.07,
        symmetric: bool = True,
        combine: str = 'sum',
        loss_weight: float = 1.0,
        loss_name: str = 'loss_supcon',
    ) -> None:
        super().__init__(loss_weight, loss_name)
        if not temperature > 0:
            raise ConfigError(f'SupConLoss: temperature must be > 0, got {temperature}')
        if combine not in _COMBINE:
            raise ConfigError(f'SupConLoss: combine must be one of {_COMBINE}, got {combine!r}')
        self.temperature = float(temperature)
        self.symmetric = symmetric
        self.combine = combine

    def forward(self, img_feat: Tensor, text_feat: Tensor, labels: Tensor) -> dict[str, Tensor]:
        """``img_feat (B, D)``, ``text_feat (B, D)``, ``labels (B,)`` -> named terms."""
        if img_feat.shape != text_feat.shape or len(labels) != len(img_feat):
            raise ValueError(
                f'SupConLoss: img_feat {tuple(img_feat.shape)}, text_feat '
                f'{tuple(text_feat.shape)} and labels {tuple(labels.shape)} must match as '
                '(B, D), (B, D), (B,)'
            )
        img = F.normalize(img_feat.float(), dim=1)
        text = F.normalize(text_feat.float(), dim=1)
        logits = img @ text.t() / self.temperature
        positive = labels[:, None] == labels[None, :]
        i2t = supcon_direction(logits, positive)
        out = {figure_name(self.loss_name, suffix='_i2t'): i2t.detach()}
        if not self.symmetric:
            return {**self.named(i2t), **out}
        t2i = supcon_direction(logits.t(), positive.t())
        out[figure_name(self.loss_name, suffix='_t2i')] = t2i.detach()
        loss = i2t + t2i if self.combine == 'sum' else (i2t + t2i) / 2
        return {**self.named(loss), **out}
