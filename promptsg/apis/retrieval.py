"""Query → gallery search on L2-normalised embeddings: top-k by cosine similarity.

A gallery is a :class:`~promptsg.retrieval.GalleryIndex` (saved by ``tools/extract.py
--gallery-index``, or built in memory from images). Results drop the query's own file and, when
cameras are known, gallery images with the query's pid AND camera, as the ReID metric does, so
the share of queries whose top-1 is correct equals the metric's Rank-1 on the same features.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from promptsg.apis.images import ImageRecord
from promptsg.errors import ConfigError, DataError
from promptsg.retrieval import GalleryIndex

#: ``matches`` values: the gallery image shows the query's identity, another one, or unknown.
MATCH, NO_MATCH, UNKNOWN = 1, 0, -1


@dataclass
class SearchResult:
    """Top-k gallery images per query.

    ``indices`` (Q, k) gallery rows, best first, -1 where fewer than k candidates remain;
    ``scores`` (Q, k) cosine similarities (-inf at -1 indices); ``matches`` (Q, k) of
    ``MATCH``/``NO_MATCH``/``UNKNOWN`` from the images' pids; ``has_match`` (Q,) whether a
    gallery image of the query's identity was left after filtering (the metric's valid
    queries); ``rule`` says which gallery images were filtered out.
    """

    indices: np.ndarray
    scores: np.ndarray
    matches: np.ndarray
    has_match: np.ndarray | None = None
    rule: str = ''

    def top1_summary(self) -> str | None:
        """``'top-1 correct: h/n queries ... (rule)'``, or None when no identity is known."""
        if self.has_match is None or not self.has_match.any():
            return None
        valid = self.has_match
        hits = int((self.matches[valid, 0] == MATCH).sum())
        share = 100.0 * hits / int(valid.sum())
        return (
            f'top-1 correct: {hits}/{int(valid.sum())} queries with a correct match in the '
            f'gallery (Rank-1 {share:.2f}%; {self.rule})'
        )


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
    camera_filter: bool = True,
) -> SearchResult:
    """Search ``gallery`` images for each ``query`` image (exact, ties to the lower row)."""
    if len(gallery) != len(gallery_feats):
        raise DataError(f'{len(gallery)} gallery images but {len(gallery_feats)} features')
    index = GalleryIndex.build(
        gallery_feats,
        [r.path for r in gallery],
        [r.pid for r in gallery],
        [r.camid for r in gallery],
        backend='torch',
    )
    return search_index(query, query_feats, index, topk, exclude_self, camera_filter)


def index_records(index: GalleryIndex) -> list[ImageRecord]:
    """The index's images as records (path, pid, camid)."""
    return [ImageRecord(p, pid, c) for p, pid, c in zip(index.paths, index.pids, index.camids)]


def search_index(
    query: list[ImageRecord],
    query_feats: np.ndarray,
    index: GalleryIndex,
    topk: int = 5,
    exclude_self: bool = True,
    camera_filter: bool = True,
    fingerprint: str | None = None,
) -> SearchResult:
    """Search ``index`` for each ``query`` image with features (Q, D).

    ``exclude_self`` drops the query's own file; ``camera_filter`` drops gallery images with the
    query's pid and camera where both are known (the ReID metric's rule). ``fingerprint`` (the
    querying model's) must match the index's.
    """
    if len(query) != len(query_feats):
        raise DataError(f'{len(query)} query images but {len(query_feats)} features')
    q_pids = [r.pid for r in query]
    q_camids = [r.camid for r in query]
    hits = index.search(
        query_feats,
        topk,
        q_pids,
        q_camids,
        [r.path for r in query] if exclude_self else None,
        camera_filter,
        fingerprint,
    )
    matches = np.full(hits.rows.shape, UNKNOWN, dtype=np.int64)
    for q, pid in enumerate(q_pids):
        for j, g in enumerate(hits.rows[q]):
            if g >= 0 and pid is not None and index.pids[g] is not None:
                matches[q, j] = MATCH if pid == index.pids[g] else NO_MATCH
    has_match = _has_match(query, index, exclude_self, camera_filter)
    return SearchResult(
        hits.rows, hits.scores, matches, has_match, _rule(query, index, camera_filter, exclude_self)
    )


def _has_match(
    query: list[ImageRecord], index: GalleryIndex, exclude_self: bool, camera_filter: bool
) -> np.ndarray:
    """(Q,) bool: a gallery image of the query's pid survives the filters."""
    by_pid: dict[str, list[int]] = {}
    for row, pid in enumerate(index.pids):
        if pid is not None:
            by_pid.setdefault(pid, []).append(row)
    out = np.zeros(len(query), dtype=bool)
    for q, record in enumerate(query):
        own = _key(record.path) if exclude_self else None
        for row in by_pid.get(record.pid, ()) if record.pid is not None else ():
            same_camera = record.camid >= 0 and index.camids[row] == record.camid
            if (camera_filter and same_camera) or (own and _key(index.paths[row]) == own):
                continue
            out[q] = True
            break
    return out


def _rule(
    query: list[ImageRecord], index: GalleryIndex, camera_filter: bool, exclude_self: bool
) -> str:
    """Which gallery images the search filtered out, in words."""
    cameras = any(r.camid >= 0 for r in query) and any(c >= 0 for c in index.camids)
    if not camera_filter:
        camera = 'camera filter off'
    elif cameras:
        camera = "gallery images with the query's pid and camera ignored, as the ReID metric"
    else:
        camera = 'cameras unknown, no camera rule'
    own = "the query's own file excluded" if exclude_self else "the query's own file kept"
    return f'{camera}; {own}'


def _key(path: str) -> str:
    return os.path.realpath(path)
