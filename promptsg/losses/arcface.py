"""ArcFace loss: cross-entropy on the margin logits of :class:`~promptsg.heads.ArcFaceHead`."""

from __future__ import annotations

from promptsg.losses.cross_entropy import CrossEntropyLoss
from promptsg.registry import LOSSES


@LOSSES.register_module()
class ArcFaceLoss(CrossEntropyLoss):
    """Cross-entropy on ``head(feat, labels)`` — the margin is the head's, not the loss's.

    Feed it the training logits of ``ArcFaceHead`` (called WITH labels); the scale s and the
    margin m are head options. No label smoothing by default, as in ArcFace.
    """

    def __init__(
        self,
        label_smoothing: float = 0.0,
        loss_weight: float = 1.0,
        loss_name: str = 'loss_arcface',
    ) -> None:
        super().__init__(label_smoothing, loss_weight, loss_name)
