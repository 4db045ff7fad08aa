"""Query → gallery search on L2-normalised embeddings: top-k by cosine similarity."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from promptsg.apis.images import ImageRecord
from promptsg.errors import ConfigError, DataError

#: ``matches`` values: the gallery image shows the query's identity, another one, or unknown.
MATCH, NO_MATCH, UNKNOWN = 1, 0, -1


@dataclass
class SearchResult:
    """Top-k gallery images per query.

    ``indices`` (Q, k) gallery rows, best first, -1 where fewer than k candidates remain;
    ``scores`` (Q, k) cosine similarities (-inf at -1 indices); ``matches`` (Q, k) of
    ``MATCH``/``NO_MATCH``/``UNKNOWN`` from the images' pids.
    """

    indices: np.ndarray
    scores: np.ndarray
    matches: np.ndarray


def topk_search(
    query_feats: np.ndarray,
    gallery_feats: np.ndarray,
    topk: int,
    exclude: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-k gallery rows per query by cosine similarity.

    Args:
        query_feats: (Q, D) L2-normalised.
        gallery_feats: (G, D) L2-normalised.
        topk: results per query (at most G).
        exclude: optional (Q, G) bool, True where a gallery image must not be returned.

    Returns:
        indices (Q, k) int64 (-1 past the last candidate) and scores (Q, k) float32.
    """
    if topk < 1:
        raise ConfigError(f'topk must be >= 1, got {topk}')
    if query_feats.ndim != 2 or gallery_feats.ndim != 2:
        raise DataError(
            f'features must be (N, D); got {query_feats.shape} and {gallery_feats.shape}'
        )
    if query_feats.shape[1] != gallery_feats.shape[1]:
        raise DataError(
            f'query features are {query_feats.shape[1]}-d but gallery features '
            f'{gallery_feats.shape[1]}-d'
        )
    sim = query_feats.astype(np.float32) @ gallery_feats.astype(np.float32).T
    if exclude is not None:
        sim = np.where(exclude, -np.inf, sim)
    k = min(topk, sim.shape[1])
    order = np.argsort(-sim, axis=1, kind='stable')[:, :k]
    scores = np.take_along_axis(sim, order, axis=1).astype(np.float32)
    indices = np.where(np.isneginf(scores), -1, order).astype(np.int64)
    return indices, scores


def search_records(
    query: list[ImageRecord],
    gallery: list[ImageRecord],
    query_feats: np.ndarray,
    gallery_feats: np.ndarray,
    topk: int = 5,
    exclude_self: bool = True,
) -> SearchResult:
    """Search ``gallery`` for each ``query`` image; ``exclude_self`` skips the query's own file."""
    exclude = None
    if exclude_self:
        g_paths = np.array([_key(r.path) for r in gallery])
        exclude = np.array([_key(r.path) for r in query])[:, None] == g_paths[None, :]
    indices, scores = topk_search(query_feats, gallery_feats, topk, exclude)
    matches = np.full(indices.shape, UNKNOWN, dtype=np.int64)
    for q, record in enumerate(query):
        for j, g in enumerate(indices[q]):
            if g >= 0 and record.pid is not None and gallery[g].pid is not None:
                matches[q, j] = MATCH if record.pid == gallery[g].pid else NO_MATCH
    return SearchResult(indices, scores, matches)


def _key(path: str) -> str:
    return os.path.realpath(path)
