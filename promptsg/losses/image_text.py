"""CLIP-ReID's image↔text losses: the stage-1 contrastive pair and the stage-2 image→text CE.

Stage 1 (``ImageTextContrastiveLoss``) learns the identity prompts against frozen image
features: ``L_i2t`` contrasts each image with the batch's texts, ``L_t2i`` each text with the
batch's images, same pid = positive. Stage 2 (``ImageToTextCELoss``) classifies each image among
every identity's cached text feature with a label-smoothed cross-entropy.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from promptsg.errors import ConfigError
from promptsg.losses.base import WeightedLoss, figure_name
from promptsg.losses.supcon import supcon_direction
from promptsg.registry import LOSSES


def _check_temperature(owner: str, temperature: float) -> float:
    if isinstance(temperature, bool) or not isinstance(temperature, int | float):
        raise ConfigError(f'{owner}: temperature must be a number > 0, got {temperature!r}')
    if not temperature > 0:
        raise ConfigError(f'{owner}: temperature must be > 0, got {temperature}')
    return float(temperature)


def contrastive_direction(
    anchors: Tensor,
    candidates: Tensor,
    anchor_pids: Tensor,
    candidate_pids: Tensor,
    temperature: float = 1.0,
) -> Tensor:
    """``mean_i −mean_{p: pid_p = pid_i} log softmax_j(a_i·c_j / τ)[p]``.

    ``anchors (B, D)``, ``candidates (N, D)``, ``anchor_pids (B,)``, ``candidate_pids (N,)``;
    every anchor needs at least one candidate of its pid.
    """
    logits = anchors.float() @ candidates.float().t() / temperature
    positive = anchor_pids[:, None] == candidate_pids[None, :]
    if not bool(positive.any(1).all()):
        raise ValueError('contrastive_direction: an anchor has no candidate of its pid')
    return supcon_direction(logits, positive)


@LOSSES.register_module()
class ImageTextContrastiveLoss(WeightedLoss):
    """Stage-1 loss of CLIP-ReID: ``L_i2t + L_t2i`` between image and prompt text features.

    ``s_ij = v_i · l_j / τ``; ``L_i2t`` = :func:`contrastive_direction` (images → texts),
    ``L_t2i`` the same from the texts. The official code uses raw (unnormalised) features and
    τ = 1 (the defaults); ``normalize=True`` uses cosine similarities instead. The directions
    are also logged, unweighted and detached, as ``<name>_i2t`` / ``_t2i``.
    """

    def __init__(
        self,
        temperature: float = 1.0,
        normalize: bool = False,
        loss_weight: float = 1.0,
        loss_name: str = 'loss_i2t_t2i',
    ) -> None:
        super().__init__(loss_weight, loss_name)
        self.temperature = _check_temperature(type(self).__name__, temperature)
        self.normalize = bool(normalize)

    def forward(self, img_feat: Tensor, text_feat: Tensor, labels: Tensor) -> dict[str, Tensor]:
        """``img_feat (B, D)``, ``text_feat (B, D)``, ``labels (B,)`` -> named terms."""
        if img_feat.shape != text_feat.shape or len(labels) != len(img_feat):
            raise ValueError(
                f'{type(self).__name__}: img_feat {tuple(img_feat.shape)}, text_feat '
                f'{tuple(text_feat.shape)} and labels {tuple(labels.shape)} must match as '
                '(B, D), (B, D), (B,)'
            )
        img, text = img_feat.float(), text_feat.float()
        if self.normalize:
            img, text = F.normalize(img, dim=1), F.normalize(text, dim=1)
        i2t = contrastive_direction(img, text, labels, labels, self.temperature)
        t2i = contrastive_direction(text, img, labels, labels, self.temperature)
        return {
            **self.named(i2t + t2i),
            figure_name(self.loss_name, suffix='_i2t'): i2t.detach(),
            figure_name(self.loss_name, suffix='_t2i'): t2i.detach(),
        }


@LOSSES.register_module()
class ImageToTextCELoss(WeightedLoss):
    """Stage-2 loss of CLIP-ReID: cross-entropy of ``logits = v · Lᵀ / τ`` against the pid.

    ``img_feat (B, D)``, ``text_bank (C, D)`` (one cached text feature per training identity,
    row = pid), ``labels (B,)``. Label smoothing ε as in ``CrossEntropyLoss`` (official: 0.1,
    raw features, τ = 1). The share of images whose best text is their own is logged as
    ``<name>_acc`` (not summed).
    """

    def __init__(
        self,
        label_smoothing: float = 0.1,
        temperature: float = 1.0,
        normalize: bool = False,
        loss_weight: float = 1.0,
        loss_name: str = 'loss_i2t_ce',
    ) -> None:
        super().__init__(loss_weight, loss_name)
        if not 0 <= label_smoothing < 1:
            raise ConfigError(
                f'{type(self).__name__}: label_smoothing must be in [0, 1), got {label_smoothing}'
            )
        self.label_smoothing = float(label_smoothing)
        self.temperature = _check_temperature(type(self).__name__, temperature)
        self.normalize = bool(normalize)

    def forward(self, img_feat: Tensor, text_bank: Tensor, labels: Tensor) -> dict[str, Tensor]:
        """``img_feat (B, D)``, ``text_bank (C, D)``, ``labels (B,)`` in ``[0, C)``."""
        if img_feat.ndim != 2 or text_bank.ndim != 2 or img_feat.shape[1] != text_bank.shape[1]:
            raise ValueError(
                f'{type(self).__name__}: img_feat {tuple(img_feat.shape)} and text_bank '
                f'{tuple(text_bank.shape)} must be (B, D) and (C, D)'
            )
        img, text = img_feat.float(), text_bank.float().to(img_feat.device)
        if self.normalize:
            img, text = F.normalize(img, dim=1), F.normalize(text, dim=1)
        logits = img @ text.t() / self.temperature
        loss = F.cross_entropy(logits, labels.long(), label_smoothing=self.label_smoothing)
        acc = (logits.argmax(1) == labels).float().mean()
        return {**self.named(loss), figure_name(self.loss_name, suffix='_acc'): acc.detach()}
