"""Batch-hard triplet loss (Hermans et al., 2017)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from promptsg.errors import ConfigError
from promptsg.losses.base import WeightedLoss
from promptsg.registry import LOSSES


def euclidean_dist(x: Tensor, y: Tensor) -> Tensor:
    """Pairwise Euclidean distances ``(N, D), (M, D) -> (N, M)``, safe to differentiate at 0."""
    d2 = x.pow(2).sum(1, keepdim=True) + y.pow(2).sum(1)[None] - 2 * x @ y.t()
    return d2.clamp(min=1e-12).sqrt()


@LOSSES.register_module()
class TripletLoss(WeightedLoss):
    """Batch-hard triplet loss on ``feats (B, D)`` with ``labels (B,)``.

    Per anchor: the farthest positive (same pid, not itself) and the closest negative, by
    Euclidean distance; loss ``max(0, d_ap − d_an + margin)``, or ``softplus(d_ap − d_an)``
    with ``soft_margin`` (margin unused). Anchors without a positive or without a negative in
    the batch are left out of the mean; when none is left the loss is ``feats.sum() * 0``
    (zero, still on the graph). A P×K sampler keeps every anchor valid (SPEC §5.7).
    """

    def __init__(
        self,
        margin: float = 0.3,
        soft_margin: bool = False,
        normalize_feature: bool = False,
        loss_weight: float = 1.0,
        loss_name: str = 'loss_triplet',
    ) -> None:
        super().__init__(loss_weight, loss_name)
        if not margin >= 0:
            raise ConfigError(f'TripletLoss: margin must be >= 0, got {margin}')
        self.margin = float(margin)
        self.soft_margin = soft_margin
        self.normalize_feature = normalize_feature

    def forward(self, feats: Tensor, labels: Tensor) -> dict[str, Tensor]:
        """``feats (B, D)``, ``labels (B,)`` -> ``{loss_name: scalar}``."""
        x = feats.float()
        if self.normalize_feature:
            x = F.normalize(x, dim=1)
        same = labels[:, None] == labels[None, :]
        eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
        pos, neg = same & ~eye, ~same
        valid = pos.any(1) & neg.any(1)
        if not bool(valid.any()):
            return self.named(feats.sum() * 0)
        dist = euclidean_dist(x[valid], x)
        pos, neg = pos[valid], neg[valid]
        d_ap = dist.masked_fill(~pos, float('-inf')).max(1).values
        d_an = dist.masked_fill(~neg, float('inf')).min(1).values
        if self.soft_margin:
            loss = F.softplus(d_ap - d_an)
        else:
            loss = (d_ap - d_an + self.margin).clamp(min=0)
        return self.named(loss.mean())
