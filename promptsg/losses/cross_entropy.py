"""Identity (ID) loss: cross-entropy with label smoothing."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from promptsg.errors import ConfigError
from promptsg.losses.base import WeightedLoss
from promptsg.registry import LOSSES


@LOSSES.register_module()
class CrossEntropyLoss(WeightedLoss):
    """Cross-entropy on ``logits (B, K)`` against ``labels (B,)``, mean over the batch.

    Label smoothing ε trains against ``(1 − ε)·onehot(y) + ε/K``, i.e.
    ``−(1 − ε)·log p_y − (ε/K)·Σ_k log p_k`` (Szegedy et al., 2016; 0.1 is the ReID default).
    """

    def __init__(
        self,
        label_smoothing: float = 0.1,
        loss_weight: float = 1.0,
        loss_name: str = 'loss_ce',
    ) -> None:
        super().__init__(loss_weight, loss_name)
        if not 0 <= label_smoothing < 1:
            raise ConfigError(
                f'{type(self).__name__}: label_smoothing must be in [0, 1), got {label_smoothing}'
            )
        self.label_smoothing = float(label_smoothing)

    def forward(self, logits: Tensor, labels: Tensor) -> dict[str, Tensor]:
        """``logits (B, K)``, ``labels (B,)`` -> ``{loss_name: scalar}``."""
        loss = F.cross_entropy(logits.float(), labels.long(), label_smoothing=self.label_smoothing)
        return self.named(loss)
