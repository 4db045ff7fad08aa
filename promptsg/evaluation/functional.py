"""Pure ReID retrieval metrics in torch: distances, CMC Rank-k, mAP (standard or trapezoidal), mINP.

Protocol (Market-1501 / fast-reid):

* Each query ranks the gallery by ascending distance; equal distances keep gallery order (ties
  go to the lower gallery index, as a stable sort would). The slow references in the tests
  follow the same rule, which makes every figure exactly reproducible.
* With ``camera_filter`` and known cameras, gallery entries with the query's pid AND camid are
  removed from that query's ranking (later entries move up). A negative camid (``-1``) means
  unknown: such pairs are never filtered.
* A query with no correct match left in the gallery is skipped (``num_valid_queries`` counts the
  others). Scores are averaged over valid queries and reported as **percentages (0-100)**.

For a query whose r-th retrieved entry (1-based, after filtering) is its k-th correct match,
precision there is ``P(r) = k / r``. Over its ``n`` correct matches:

* standard AP = ``mean_k P(r_k)``;
* trapezoidal AP (hand-ReID papers) = ``sum_k (P(r_k - 1) + P(r_k)) / 2 / n`` where
  ``P(r_k - 1) = (k - 1) / (r_k - 1)`` is the precision at the rank just before the hit and
  ``P(0) = 1`` (the Market-1501 ``compute_AP.m`` / MBA-Net ``compute_mAP`` convention);
* INP = ``n / r_n`` (the hardest positive's rank), mINP = mean INP (fast-reid);
* Rank-k = share of queries whose first correct match has ``r_1 <= k``.

Scoring runs on the CPU, a chunk of queries at a time, and never sorts a gallery row: see
``_query_scores``. Inputs may live on any device: ids and each chunk of distances are moved to
the CPU; ``feature_cmc_map`` computes the distances on the features' device. Distances must be
finite (NaN or inf raises DataError).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import NamedTuple

import torch
from torch import Tensor

from promptsg.errors import ConfigError, DataError
from promptsg.evaluation.distance import (
    DISTANCE_METRICS,
    check_choice,
    check_feature_pair,
    pairwise_distance,
    prepare_features,
    prepared_distance,
    sort_key,
)
from promptsg.evaluation.query_expansion import average_query_expansion, check_query_expansion
from promptsg.evaluation.rerank import (
    RERANK_MODES,
    SparseRerank,
    check_rerank_args,
    k_reciprocal_rerank,
)

AP_MODES = ('standard', 'trapezoid')
#: Distances held at once when ``chunk_size`` is None: chunks of ``2**22 // G`` queries.
CHUNK_ELEMENTS = 1 << 22
#: Most histogram bins per query (at most G / 8) over its matches' distances; speed only.
HIST_BINS = 2048


def _as_ids(values, name: str, length: int) -> Tensor:
    ids = torch.as_tensor(values).detach().cpu().long().reshape(-1)
    if ids.numel() != length:
        raise DataError(f'{name} has {ids.numel()} entries; expected {length}')
    return ids


def _check_topk(topk: Sequence[int]) -> tuple[int, ...]:
    topk = tuple(int(k) for k in topk)
    if not topk or min(topk) < 1:
        raise ConfigError(f'topk={topk} is not valid; give positive ranks such as (1, 5, 10)')
    return topk


def _chunk_rows(num_rows: int, num_cols: int, chunk_size: int | None) -> Iterator[slice]:
    if chunk_size is None:
        chunk_size = max(1, CHUNK_ELEMENTS // max(num_cols, 1))
    if int(chunk_size) < 1:
        raise ConfigError(f'chunk_size={chunk_size} is not valid; give a positive int or None')
    for start in range(0, num_rows, int(chunk_size)):
        yield slice(start, min(start + int(chunk_size), num_rows))


class _Gallery(NamedTuple):
    """Gallery ids with a pid-sorted index, so each query's matches are found without a scan."""

    pids: Tensor  # (G,)
    camids: Tensor | None  # (G,)
    order: Tensor  # (G,) gallery indices sorted by pid (stable)
    sorted_pids: Tensor  # (G,)

    @classmethod
    def build(cls, pids: Tensor, camids: Tensor | None) -> _Gallery:
        order = torch.argsort(pids, stable=True)
        return cls(pids, camids, order, pids[order])


def _match_pairs(
    q_pids: Tensor, q_camids: Tensor | None, gallery: _Gallery
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(rows, cols) of the correct matches and of the junk (same pid, same known camera).

    Pairs are row-major with ascending gallery index inside a row (the pid sort is stable).
    """
    start = torch.searchsorted(gallery.sorted_pids, q_pids, right=False)
    count = torch.searchsorted(gallery.sorted_pids, q_pids, right=True) - start
    rows = torch.repeat_interleave(torch.arange(q_pids.numel()), count)
    within = torch.arange(rows.numel()) - (torch.cumsum(count, 0) - count)[rows]
    cols = gallery.order[start[rows] + within]
    if q_camids is None or gallery.camids is None:
        return rows, cols, rows[:0], cols[:0]
    junk = (q_camids[rows] >= 0) & (gallery.camids[cols] == q_camids[rows])
    return rows[~junk], cols[~junk], rows[junk], cols[junk]


def _scores_from_ranks(
    rank: Tensor, n_hits: Tensor, trapezoid: bool
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(first rank, AP, INP, valid) from the 1-based ranks (c, H) of each row's hits in order.

    Entries ``rank[i, k]`` with ``k >= n_hits[i]`` are ignored.
    """
    num_q, width = rank.shape
    k = torch.arange(1, width + 1, dtype=torch.float64)[None]
    is_hit = k <= n_hits[:, None]
    safe_rank = torch.where(is_hit, rank, torch.ones_like(rank))
    precision = k / safe_rank
    if trapezoid:
        before = (k - 1) / (safe_rank - 1).clamp_min(1)
        precision = (torch.where(safe_rank > 1, before, torch.ones_like(before)) + precision) / 2
    valid = n_hits > 0
    n = n_hits.double().clamp_min(1)
    ap = torch.where(is_hit, precision, torch.zeros_like(precision)).sum(1) / n
    first_rank = torch.where(valid, safe_rank[:, 0], torch.full_like(n, float('inf')))
    last = (n_hits - 1).clamp_min(0)[:, None]
    inp = torch.where(valid, n_hits.double() / safe_rank.gather(1, last)[:, 0], torch.zeros_like(n))
    return first_rank, ap, inp, valid


def _pad_per_row(rows: Tensor, values: Tensor, counts: Tensor, fill: float) -> Tensor:
    """Row-major ragged values (grouped by ``rows``) as a padded matrix (c, max(counts))."""
    first = torch.cumsum(counts, 0) - counts
    col = torch.arange(rows.numel()) - first[rows]
    out = torch.full((counts.numel(), max(int(counts.max()), 1)), fill, dtype=values.dtype)
    out[rows, col] = values
    return out


def _query_scores(
    dist: Tensor,
    q_pids: Tensor,
    q_camids: Tensor | None,
    gallery: _Gallery,
    trapezoid: bool,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Per-query (first-hit rank, AP, INP, valid) for distances (c, G); float64 (c,) each.

    No row is sorted. Each row's distances are binned (``min(HIST_BINS, G // 8)`` bins over
    the range of the row's correct matches, plus one bin below and one above). A hit's rank is
    the number of kept entries in lower bins (a histogram prefix sum) plus the kept entries of
    its own bin that precede it, found by sorting just those few candidates by (distance,
    gallery index) with integer keys. Binning is monotone in the distance, so the result is
    exact whatever the bins hold; they only decide how few candidates need sorting.
    """
    lowest, highest = torch.aminmax(dist)
    if not bool(torch.isfinite(lowest) & torch.isfinite(highest)):
        raise DataError('distances must be finite; got NaN or inf (check the features)')
    dist = dist.contiguous()
    num_q, num_g = dist.shape
    rows, cols, junk_rows, junk_cols = _match_pairs(q_pids, q_camids, gallery)
    n_hits = torch.bincount(rows, minlength=num_q)
    values = dist[rows, cols]
    low = dist.new_zeros(num_q).scatter_reduce_(0, rows, values, 'amin', include_self=False)
    high = dist.new_zeros(num_q).scatter_reduce_(0, rows, values, 'amax', include_self=False)
    span, inner = high - low, max(1, min(HIST_BINS, num_g // 8))
    scale = torch.where(span > 0, (inner - 1) / span, torch.ones_like(span))
    scale = scale.clamp_(max=torch.finfo(dist.dtype).max)

    # bin 0: below the nearest hit; 1..inner: the hits' range; inner + 1: far above.
    # Bins are numbered row-major across the chunk, so one bincount histograms every row.
    num_bins = inner + 2
    index_dtype = torch.int32 if num_q * num_bins < 2**31 else torch.int64
    bins = (dist - low[:, None]).mul_(scale[:, None]).add_(1).clamp_(0, num_bins - 1)
    offsets = torch.arange(0, num_q * num_bins, num_bins, dtype=index_dtype)[:, None]
    bins = bins.to(index_dtype).add_(offsets)
    counts = torch.bincount(bins.view(-1), minlength=num_q * num_bins)
    junk_bins = bins[junk_rows, junk_cols].long()
    counts.index_add_(0, junk_bins, torch.full_like(junk_bins, -1))
    kept_before = counts.cumsum(0) - counts  # kept entries in earlier bins (and earlier rows)
    row_before = kept_before.view(num_q, num_bins)[:, 0]

    hit_bin = torch.zeros(num_q * num_bins, dtype=torch.bool)
    hit_bin[bins[rows, cols].long()] = True
    candidate = torch.index_select(hit_bin, 0, bins.view(-1)).view(num_q, num_g)
    cand_rows, cand_cols = candidate.nonzero(as_tuple=True)
    kind = torch.zeros(num_q, num_g, dtype=torch.int8)  # 1: correct match, 2: junk
    kind[rows, cols] = 1
    kind[junk_rows, junk_cols] = 2
    cand_bins = bins[cand_rows, cand_cols].long()
    order = torch.argsort(sort_key(dist[cand_rows, cand_cols]), stable=True)
    order = order[torch.argsort(cand_bins[order], stable=True)]  # by bin, distance, index
    cand_bins, cand_kind = cand_bins[order], kind[cand_rows[order], cand_cols[order]]
    cand_rows = cand_rows[order]
    del bins, kind, order

    new_bin = torch.ones_like(cand_bins, dtype=torch.bool)
    new_bin[1:] = cand_bins[1:] != cand_bins[:-1]
    starts = new_bin.nonzero(as_tuple=True)[0]
    group = torch.cumsum(new_bin, 0) - 1
    is_junk = cand_kind == 2
    junk_seen = torch.cumsum(is_junk, 0) - is_junk.long()
    position = torch.arange(cand_bins.numel()) - starts[group]  # place inside the bin
    kept_in_bin = position - (junk_seen - junk_seen[starts][group])  # minus junk placed before
    rank = kept_before[cand_bins] - row_before[cand_rows] + kept_in_bin + 1
    is_hit = cand_kind == 1
    rank = _pad_per_row(cand_rows[is_hit], rank[is_hit].double(), n_hits, fill=1.0)
    return _scores_from_ranks(rank, n_hits, trapezoid)


def _summarise(
    first_rank: Tensor, ap: Tensor, inp: Tensor, valid: Tensor, topk: tuple[int, ...]
) -> dict[str, float]:
    num_valid = int(valid.sum())
    if num_valid == 0:
        raise DataError(
            'no query has a correct match in the gallery (after camera filtering); '
            'check the query/gallery pids and camids'
        )
    first_rank, ap, inp = first_rank[valid], ap[valid], inp[valid]
    results = {f'rank{k}': 100.0 * float((first_rank <= k).double().mean()) for k in topk}
    results['mAP'] = 100.0 * float(ap.mean())
    results['mINP'] = 100.0 * float(inp.mean())
    results['num_valid_queries'] = num_valid
    return results


def _camids_or_none(q_camids, g_camids, num_q: int, num_g: int, camera_filter: bool):
    if not camera_filter or q_camids is None or g_camids is None:
        return None, None
    return _as_ids(q_camids, 'q_camids', num_q), _as_ids(g_camids, 'g_camids', num_g)


def cmc_map(
    distmat: Tensor,
    q_pids,
    g_pids,
    q_camids=None,
    g_camids=None,
    topk: Sequence[int] = (1, 5, 10),
    ap: str = 'standard',
    camera_filter: bool = True,
    chunk_size: int | None = None,
) -> dict[str, float]:
    """Rank-k, mAP and mINP (percentages) of a distance matrix (Q, G); see the module docstring.

    Queries are scored ``chunk_size`` rows at a time (None: about 4M distances per chunk), so
    memory beyond ``distmat`` is bounded by ``chunk_size x G``. Returns ``{'rank<k>' for k in
    topk, 'mAP', 'mINP', 'num_valid_queries'}``.
    """
    check_choice('ap', ap, AP_MODES)
    topk = _check_topk(topk)
    distmat = torch.as_tensor(distmat)
    if distmat.dim() != 2 or distmat.shape[0] == 0 or distmat.shape[1] == 0:
        raise DataError(f'distmat must be a non-empty (Q, G) matrix; got {tuple(distmat.shape)}')
    num_q, num_g = distmat.shape
    q_pids = _as_ids(q_pids, 'q_pids', num_q)
    g_pids = _as_ids(g_pids, 'g_pids', num_g)
    q_camids, g_camids = _camids_or_none(q_camids, g_camids, num_q, num_g, camera_filter)

    gallery = _Gallery.build(g_pids, g_camids)
    parts = []
    for rows in _chunk_rows(num_q, num_g, chunk_size):
        dist = distmat[rows].detach().cpu()
        q_cam = None if q_camids is None else q_camids[rows]
        parts.append(_query_scores(dist, q_pids[rows], q_cam, gallery, ap == 'trapezoid'))
    return _summarise(*(torch.cat(p) for p in zip(*parts)), topk)


def feature_cmc_map(
    query_feats: Tensor,
    gallery_feats: Tensor,
    q_pids,
    g_pids,
    q_camids=None,
    g_camids=None,
    metric: str = 'cosine',
    topk: Sequence[int] = (1, 5, 10),
    ap: str = 'standard',
    camera_filter: bool = True,
    chunk_size: int | None = None,
) -> dict[str, float]:
    """:func:`cmc_map` from features (Q, D) and (G, D), computing distances chunk by chunk.

    The (Q, G) matrix is never held whole: memory is bounded by ``chunk_size x G``.
    """
    check_choice('metric', metric, DISTANCE_METRICS)
    check_choice('ap', ap, AP_MODES)
    topk = _check_topk(topk)
    num_q, num_g = query_feats.shape[0], gallery_feats.shape[0]
    if num_q == 0 or num_g == 0:
        raise DataError(f'need at least one query and one gallery feature; got {num_q} and {num_g}')
    q_pids = _as_ids(q_pids, 'q_pids', num_q)
    g_pids = _as_ids(g_pids, 'g_pids', num_g)
    q_camids, g_camids = _camids_or_none(q_camids, g_camids, num_q, num_g, camera_filter)

    query_feats, gallery_feats = check_feature_pair(query_feats, gallery_feats)
    query, gallery_prep = (
        prepare_features(query_feats, metric),
        prepare_features(gallery_feats, metric),
    )
    gallery = _Gallery.build(g_pids, g_camids)
    parts = []
    for rows in _chunk_rows(num_q, num_g, chunk_size):
        chunk = tuple(None if t is None else t[rows] for t in query)
        dist = prepared_distance(chunk, gallery_prep, metric).detach().cpu()
        q_cam = None if q_camids is None else q_camids[rows]
        parts.append(_query_scores(dist, q_pids[rows], q_cam, gallery, ap == 'trapezoid'))
    return _summarise(*(torch.cat(p) for p in zip(*parts)), topk)


def _split_indices(split: dict, key: str, num: int, index: int) -> Tensor:
    if not isinstance(split, dict) or key not in split:
        raise DataError(f"splits[{index}] must be a dict with 'query' and 'gallery' index lists")
    idx = torch.as_tensor(split[key]).long().reshape(-1)
    if idx.numel() == 0:
        raise DataError(f"splits[{index}]['{key}'] is empty")
    if int(idx.min()) < 0 or int(idx.max()) >= num:
        raise DataError(f"splits[{index}]['{key}'] has indices outside 0..{num - 1}")
    return idx


def mean_std(per_split: Sequence[dict[str, float]]) -> tuple[dict[str, float], dict[str, float]]:
    """Mean and population std (ddof=0) of each key over per-split results."""
    mean, std = {}, {}
    for key in per_split[0]:
        values = [float(r[key]) for r in per_split]
        mu = sum(values) / len(values)
        mean[key] = mu
        std[key] = math.sqrt(sum((v - mu) ** 2 for v in values) / len(values))
    return mean, std


def _score_chunks(
    chunks, q_pids, g_pids, q_camids, g_camids, topk, ap, camera_filter
) -> dict[str, float]:
    """:func:`cmc_map` over ``(query rows, distances (c, G))`` chunks covering all queries."""
    check_choice('ap', ap, AP_MODES)
    topk = _check_topk(topk)
    num_q, num_g = len(q_pids), len(g_pids)
    q_pids = _as_ids(q_pids, 'q_pids', num_q)
    g_pids = _as_ids(g_pids, 'g_pids', num_g)
    q_camids, g_camids = _camids_or_none(q_camids, g_camids, num_q, num_g, camera_filter)
    gallery = _Gallery.build(g_pids, g_camids)
    parts = []
    for rows, dist in chunks:
        q_cam = None if q_camids is None else q_camids[rows]
        parts.append(_query_scores(dist, q_pids[rows], q_cam, gallery, ap == 'trapezoid'))
    return _summarise(*(torch.cat(p) for p in zip(*parts)), topk)


def rerank_options(rerank: bool | dict) -> dict | None:
    """``rerank`` as k_reciprocal arguments plus ``mode`` ('sparse' default), None when off."""
    if rerank is False or rerank is None:
        return None
    if rerank is True:
        rerank = {}
    if not isinstance(rerank, dict):
        raise ConfigError(f'rerank={rerank!r} is not valid; give True, False or a dict')
    allowed = ('mode', 'k1', 'k2', 'lambda_value', 'progress')
    unknown = sorted(set(rerank) - set(allowed))
    if unknown:
        raise ConfigError(f'rerank has unknown key(s) {unknown}; valid: {", ".join(allowed)}')
    options = dict(rerank)
    check_choice('rerank.mode', options.setdefault('mode', 'sparse'), RERANK_MODES)
    check_rerank_args(options.get('k1', 20), options.get('k2', 6), options.get('lambda_value', 0.3))
    return options


def query_expansion_options(query_expansion: bool | dict | None) -> dict | None:
    """``query_expansion`` as :func:`average_query_expansion` arguments, None when off."""
    if query_expansion is False or query_expansion is None:
        return None
    if query_expansion is True:
        query_expansion = {}
    if not isinstance(query_expansion, dict):
        raise ConfigError(
            f'query_expansion={query_expansion!r} is not valid; give True, False or a dict '
            'such as dict(k=10, alpha=3.0)'
        )
    allowed = ('k', 'alpha', 'times')
    unknown = sorted(set(query_expansion) - set(allowed))
    if unknown:
        raise ConfigError(
            f'query_expansion has unknown key(s) {unknown}; valid: {", ".join(allowed)}'
        )
    options = {'k': 10, 'alpha': 3.0, 'times': 1, **query_expansion}
    check_query_expansion(**options)
    return options


def multi_split_cmc_map(
    feats: Tensor,
    pids,
    camids,
    splits: Sequence[dict],
    metric: str = 'cosine',
    topk: Sequence[int] = (1, 5, 10),
    ap: str = 'standard',
    camera_filter: bool = True,
    chunk_size: int | None = None,
    rerank: bool | dict = False,
    query_expansion: bool | dict | None = None,
) -> dict:
    """Score Monte-Carlo splits of one feature set (N, D) computed once.

    Each split is ``{'query': [i...], 'gallery': [j...]}`` with row indices into ``feats``.
    ``query_expansion``: None/False, True (fast-reid's alpha-QE defaults k=10, alpha=3) or a
    dict of :func:`average_query_expansion` arguments, applied per split before any re-ranking.
    ``rerank``: False, True (k-reciprocal defaults) or a dict of k1, k2, lambda_value and
    ``mode``: 'sparse' (:class:`SparseRerank`, O((Q+G)·k) memory, the default) or 'dense'
    (:func:`k_reciprocal_rerank`, O((Q+G)^2), the reference). Returns ``{'splits': [per-split
    dict], 'mean': dict, 'std': dict}``.
    """
    check_choice('metric', metric, DISTANCE_METRICS)
    if not splits:
        raise DataError('splits is empty; give at least one {query, gallery} split')
    num = feats.shape[0]
    pids = _as_ids(pids, 'pids', num)
    camids = None if camids is None else _as_ids(camids, 'camids', num)
    rerank_args = rerank_options(rerank)
    qe_args = query_expansion_options(query_expansion)

    per_split = []
    for i, split in enumerate(splits):
        q = _split_indices(split, 'query', num, i)
        g = _split_indices(split, 'gallery', num, i)
        q_cam = None if camids is None else camids[q]
        g_cam = None if camids is None else camids[g]
        kwargs = dict(topk=topk, ap=ap, camera_filter=camera_filter)
        q_feats, g_feats = feats[q], feats[g]
        if qe_args is not None:
            q_feats, g_feats = average_query_expansion(q_feats, g_feats, **qe_args)
        if rerank_args is None:
            result = feature_cmc_map(
                q_feats, g_feats, pids[q], pids[g], q_cam, g_cam, metric=metric,
                chunk_size=chunk_size, **kwargs
            )  # fmt: skip
        elif rerank_args['mode'] == 'dense':
            args = {k: v for k, v in rerank_args.items() if k not in ('mode', 'progress')}
            dist = k_reciprocal_rerank(
                pairwise_distance(q_feats, g_feats, metric),
                pairwise_distance(q_feats, q_feats, metric),
                pairwise_distance(g_feats, g_feats, metric),
                **args,
            )
            result = cmc_map(dist, pids[q], pids[g], q_cam, g_cam, chunk_size=chunk_size, **kwargs)
        else:
            args = {k: v for k, v in rerank_args.items() if k != 'mode'}
            reranker = SparseRerank(q_feats, g_feats, metric, **args)
            chunks = reranker.chunks(chunk_size)
            result = _score_chunks(chunks, pids[q], pids[g], q_cam, g_cam, **kwargs)
        per_split.append(result)
    mean, std = mean_std(per_split)
    return {'splits': per_split, 'mean': mean, 'std': std}
