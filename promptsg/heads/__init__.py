"""Heads on the retrieval feature: ID classifiers and the BNNeck."""

from promptsg.heads.arcface import ArcFaceHead
from promptsg.heads.bnneck import BNNeck
from promptsg.heads.linear import LinearClassifier

__all__ = ['ArcFaceHead', 'BNNeck', 'LinearClassifier']
