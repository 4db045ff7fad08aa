"""Losses and loss balancers; importing this package registers them in ``LOSSES``."""

from promptsg.losses.arcface import ArcFaceLoss
from promptsg.losses.balancing import (
    FixedWeights,
    LinearRampWeight,
    LossBalancer,
    UncertaintyWeighting,
)
from promptsg.losses.center import CenterLoss
from promptsg.losses.cross_entropy import CrossEntropyLoss
from promptsg.losses.image_text import ImageTextContrastiveLoss, ImageToTextCELoss
from promptsg.losses.supcon import SupConLoss
from promptsg.losses.triplet import TripletLoss

__all__ = [
    'ArcFaceLoss',
    'CenterLoss',
    'CrossEntropyLoss',
    'FixedWeights',
    'ImageTextContrastiveLoss',
    'ImageToTextCELoss',
    'LinearRampWeight',
    'LossBalancer',
    'SupConLoss',
    'TripletLoss',
    'UncertaintyWeighting',
]
