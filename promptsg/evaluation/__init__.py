"""Retrieval evaluation: pure CMC/mAP/mINP and re-ranking functions, and the ReIDMetric."""

from promptsg.evaluation.functional import (
    cmc_map,
    feature_cmc_map,
    multi_split_cmc_map,
    pairwise_distance,
)
from promptsg.evaluation.reid_metric import ReIDMetric
from promptsg.evaluation.rerank import k_reciprocal_rerank

__all__ = [
    'ReIDMetric',
    'cmc_map',
    'feature_cmc_map',
    'k_reciprocal_rerank',
    'multi_split_cmc_map',
    'pairwise_distance',
]
