"""k-reciprocal re-ranking (Zhong et al., "Re-ranking Person Re-identification with k-reciprocal
Encoding", CVPR 2017), vectorised in torch.

Follows the authors' release step by step: the (Q+G, Q+G) distances are squared and each row is
divided by its column's maximum; neighbour lists come from a stable sort (ties: lower index
first); R(i, k1) = {j in N(i, k1+1) : i in N(j, k1+1)}; each k-reciprocal candidate c adds its
R(c, round(k1/2)) when more than 2/3 of that set lies in R(i, k1); V(i) = softmax-like weights
``exp(-d)`` on the expanded set; local query expansion averages V over the k2 nearest rows; the
Jaccard distance uses ``sum min(V_i, V_j)`` and the result is ``(1-lambda)*jaccard +
lambda*original``.

Two implementations of that one algorithm:

* :func:`k_reciprocal_rerank` from the three distance matrices, O((Q+G)^2) memory (about 1.5 GB
  at Market-1501's 19,281 test images): the reference, meant for a few thousand images;
* :class:`SparseRerank` from the features, O((Q+G)·k) memory: neighbour lists are found a chunk
  of rows at a time (``torch.topk`` plus a stable tie-break), V is kept as sparse rows, and the
  Jaccard distances are produced a chunk of queries at a time through an inverted index over
  the gallery's V, so no (Q+G)^2 (and, through :meth:`SparseRerank.chunks`, no Q×G) matrix is
  ever held. On sets small enough for both they agree to float rounding (ties included).
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor
from tqdm import tqdm

from promptsg.errors import ConfigError, DataError
from promptsg.evaluation.distance import (
    DISTANCE_METRICS,
    check_choice,
    check_feature_pair,
    prepare_features,
    prepared_distance,
    stable_topk,
)

#: Re-ranking implementations selectable as ``rerank=dict(mode=...)``.
RERANK_MODES = ('sparse', 'dense')
#: Distances held at once while neighbour lists are computed.
CHUNK_ELEMENTS = 1 << 23
#: Re-ranked distances yielded at once by :meth:`SparseRerank.chunks` (as cmc_map scores them).
OUTPUT_ELEMENTS = 1 << 22
#: (query entry, gallery entry) pairs joined at once in the inverted-index Jaccard step.
PAIR_CHUNK = 1 << 21
#: Sets at least this large show progress bars by default.
PROGRESS_MIN = 20000


def _neighbours(dist: Tensor, k: int, chunk: int = 1024) -> Tensor:
    """First ``k`` columns (N, k) of each row's stable ascending order."""
    return torch.cat(
        [
            torch.argsort(dist[s : s + chunk], dim=1, stable=True)[:, :k]
            for s in range(0, dist.shape[0], chunk)
        ]
    )


def _reciprocal(fwd: Tensor) -> Tensor:
    """Mask (N, k): ``fwd[i, a]`` is reciprocal, i.e. i is among the neighbours of fwd[i, a]."""
    rows = torch.arange(fwd.shape[0])[:, None, None]
    return (fwd[fwd] == rows).any(-1)


def check_rerank_args(k1: int, k2: int, lambda_value: float) -> None:
    """ConfigError naming the bad parameter unless k1, k2 >= 1 and lambda in [0, 1]."""
    if int(k1) < 1 or int(k2) < 1:
        raise ConfigError(f'rerank k1={k1}, k2={k2} are not valid; both must be >= 1')
    if not 0.0 <= float(lambda_value) <= 1.0:
        raise ConfigError(f'rerank lambda_value={lambda_value} is not valid; choose it in [0, 1]')


def k_reciprocal_rerank(
    q_g_dist: Tensor,
    q_q_dist: Tensor,
    g_g_dist: Tensor,
    k1: int = 20,
    k2: int = 6,
    lambda_value: float = 0.3,
) -> Tensor:
    """Re-ranked query-gallery distances (Q, G) from distances (Q, G), (Q, Q) and (G, G).

    Inputs are plain (e.g. Euclidean or cosine) distances; they are squared internally as in the
    original release. Runs on the CPU; float64 inputs stay float64, anything else is float32.
    """
    check_rerank_args(k1, k2, lambda_value)
    num_q, num_g = q_g_dist.shape
    if q_q_dist.shape != (num_q, num_q) or g_g_dist.shape != (num_g, num_g):
        raise DataError(
            f'rerank needs distances (Q, G), (Q, Q), (G, G); got {tuple(q_g_dist.shape)}, '
            f'{tuple(q_q_dist.shape)}, {tuple(g_g_dist.shape)}'
        )
    dtype = torch.float64 if q_g_dist.dtype == torch.float64 else torch.float32
    dist = torch.cat([torch.cat([q_q_dist, q_g_dist], 1), torch.cat([q_g_dist.T, g_g_dist], 1)], 0)
    dist = dist.detach().cpu().to(dtype)
    num = dist.shape[0]
    dist = dist.pow(2)
    dist = (dist / dist.max(dim=0).values.clamp_min(torch.finfo(dtype).tiny)).T.contiguous()

    k1, k2 = int(k1), int(k2)
    half = round(k1 / 2)  # half to even, as numpy's around in the release
    ranked = _neighbours(dist, max(k1 + 1, k2))
    fwd, fwd_half = ranked[:, : k1 + 1], ranked[:, : half + 1]
    recip = _reciprocal(fwd)  # (N, k1+1): R(i, k1) as a mask over fwd
    recip_half = _reciprocal(fwd_half)  # (N, half+1): R(j, k1/2) as a mask over fwd_half

    # |R(c, k1/2) ∩ R(i, k1)| for each candidate c = fwd[i, a]
    cand_idx, cand_mask = fwd_half[fwd], recip_half[fwd]  # (N, k1+1, half+1)
    in_r = (cand_idx[..., None] == fwd[:, None, None, :]) & recip[:, None, None, :]
    overlap = (in_r.any(-1) & cand_mask).sum(-1)
    expand = recip & (overlap > 2.0 / 3.0 * cand_mask.sum(-1))  # (N, k1+1)

    members = torch.zeros(num, num, dtype=dtype)
    members.scatter_add_(1, fwd, recip.to(dtype))
    members.scatter_add_(
        1, cand_idx.reshape(num, -1), (expand[..., None] & cand_mask).reshape(num, -1).to(dtype)
    )
    weights = torch.where(members > 0, torch.exp(-dist), torch.zeros((), dtype=dtype))
    weights = weights / weights.sum(1, keepdim=True)

    if k2 != 1:
        nearest = ranked[:, :k2]
        weights = torch.cat([weights[nearest[s : s + 256]].mean(1) for s in range(0, num, 256)])

    gallery_weights = weights[num_q:]
    jaccard = torch.empty(num_q, num_g, dtype=dtype)
    for i in range(num_q):
        support = weights[i].nonzero(as_tuple=True)[0]
        shared = torch.minimum(gallery_weights[:, support], weights[i, support]).sum(1)
        jaccard[i] = 1.0 - shared / (2.0 - shared)
    return jaccard * (1.0 - lambda_value) + dist[:num_q, num_q:] * lambda_value


def _gather_rows(ptr: Tensor, rows: Tensor) -> tuple[Tensor, Tensor]:
    """Positions of the entries of CSR rows ``rows`` (flat) and, per position, its place in rows."""
    counts = ptr[rows + 1] - ptr[rows]
    owner = torch.repeat_interleave(torch.arange(rows.numel()), counts)
    first = torch.cumsum(counts, 0) - counts
    return ptr[rows][owner] + torch.arange(owner.numel()) - first[owner], owner


def _coalesce(rows: Tensor, cols: Tensor, vals: Tensor, num_cols: int):
    """Sum duplicate (row, col) entries; returns rows, cols, vals sorted row-major."""
    key, inverse = torch.unique(rows * num_cols + cols, sorted=True, return_inverse=True)
    summed = torch.zeros(key.numel(), dtype=vals.dtype).index_add_(0, inverse, vals)
    return key // num_cols, key % num_cols, summed


def _csr_ptr(rows: Tensor, num_rows: int) -> Tensor:
    return torch.cat([rows.new_zeros(1), torch.cumsum(torch.bincount(rows, minlength=num_rows), 0)])


class SparseRerank:
    """k-reciprocal re-ranking of query (Q, D) against gallery (G, D) in O((Q+G)·k) memory.

    The same algorithm, parameters and tie rule as :func:`k_reciprocal_rerank` (see the module
    docstring), computed from the features: distances come a chunk of rows at a time (cosine
    ``1 - cos`` or Euclidean, as :func:`pairwise_distance`), are squared and divided by their
    row's maximum; each row keeps only its ``max(k1 + 1, k2)`` nearest neighbours. The expanded
    k-reciprocal sets V are sparse rows (about ``k1`` to ``k1 * k1 / 2`` entries each).

    Building the object does the neighbour and V work; :meth:`chunks` then yields re-ranked
    distances (c, G) a chunk of queries at a time, and :meth:`distances` the whole (Q, G).

    Args:
        query_feats: (Q, D) features.
        gallery_feats: (G, D) features.
        metric: 'cosine' or 'euclidean'.
        k1, k2, lambda_value: as in :func:`k_reciprocal_rerank`.
        chunk_size: rows of distances computed at once (None: about 8M distances).
        progress: show progress bars (None: when Q + G >= 20,000).
    """

    def __init__(
        self,
        query_feats: Tensor,
        gallery_feats: Tensor,
        metric: str = 'cosine',
        k1: int = 20,
        k2: int = 6,
        lambda_value: float = 0.3,
        chunk_size: int | None = None,
        progress: bool | None = None,
    ) -> None:
        check_choice('metric', metric, DISTANCE_METRICS)
        check_rerank_args(k1, k2, lambda_value)
        query_feats, gallery_feats = check_feature_pair(
            torch.as_tensor(query_feats), torch.as_tensor(gallery_feats)
        )
        self.dtype = torch.float64 if query_feats.dtype == torch.float64 else torch.float32
        feats = torch.cat([query_feats, gallery_feats]).detach().cpu().to(self.dtype)
        if not bool(torch.isfinite(feats).all()):
            raise DataError('rerank features must be finite; got NaN or inf')
        self.num_q, self.num_g = query_feats.shape[0], gallery_feats.shape[0]
        if self.num_q == 0 or self.num_g == 0:
            raise DataError(
                f'rerank needs queries and gallery images; got {self.num_q}, {self.num_g}'
            )
        self.metric, self.k1, self.k2 = metric, int(k1), int(k2)
        self.lambda_value = float(lambda_value)
        num = feats.shape[0]
        if chunk_size is not None and int(chunk_size) < 1:
            raise ConfigError(f'chunk_size={chunk_size} is not valid; give a positive int or None')
        self.chunk_size = int(chunk_size or max(1, CHUNK_ELEMENTS // num))
        self.progress = num >= PROGRESS_MIN if progress is None else bool(progress)
        self.prepared = prepare_features(feats, metric)

        ranked, self.row_max = self._neighbours(max(self.k1 + 1, self.k2))
        members = self._members(ranked)
        rows, cols, vals = self._weights(*members)
        if self.k2 != 1:
            rows, cols, vals = self._expand_queries(rows, cols, vals, ranked[:, : self.k2])
        # gallery V by column (the inverted index), query V by row
        is_gallery = rows >= self.num_q
        g_rows, g_cols, g_vals = rows[is_gallery] - self.num_q, cols[is_gallery], vals[is_gallery]
        by_col = torch.argsort(g_cols, stable=True)
        self.g_rows, self.g_vals = g_rows[by_col], g_vals[by_col]
        self.g_ptr = _csr_ptr(g_cols[by_col], num)
        is_query = ~is_gallery
        self.q_cols, self.q_vals = cols[is_query], vals[is_query]
        self.q_ptr = _csr_ptr(rows[is_query], self.num_q)

    def _bar(self, total: int, desc: str) -> tqdm:
        return tqdm(total=total, desc=desc, unit='row', disable=not self.progress, leave=False)

    def _squared(self, rows: slice, cols: slice = slice(None)) -> Tensor:
        """Squared distances (c, N or G) of ``rows`` to the columns ``cols`` of all features."""
        query = tuple(None if t is None else t[rows] for t in self.prepared)
        others = tuple(None if t is None else t[cols] for t in self.prepared)
        return prepared_distance(query, others, self.metric).pow_(2)

    def _pair_squared(self, rows: Tensor, cols: Tensor) -> Tensor:
        """Squared distances of the pairs (rows[n], cols[n]), (P,)."""
        feats, sq = self.prepared
        dot = (feats[rows] * feats[cols]).sum(1)
        if self.metric == 'cosine':
            return (1.0 - dot).pow(2)
        return (sq[rows] + sq[cols] - 2.0 * dot).clamp_min(0.0).sqrt().pow(2)

    def _neighbours(self, k: int) -> tuple[Tensor, Tensor]:
        """Stable top-k (N, k) of each normalised row and the rows' maxima of squared distance."""
        num = self.num_q + self.num_g
        ranked, row_max = [], []
        tiny = torch.finfo(self.dtype).tiny
        with self._bar(num, 'rerank: neighbours') as bar:
            for start in range(0, num, self.chunk_size):
                dist = self._squared(slice(start, start + self.chunk_size))
                high = dist.max(dim=1).values.clamp_min(tiny)
                ranked.append(stable_topk(dist.div_(high[:, None]), k))
                row_max.append(high)
                bar.update(dist.shape[0])
        return torch.cat(ranked), torch.cat(row_max)

    def _members(self, ranked: Tensor) -> tuple[Tensor, Tensor]:
        """(rows, cols) of the expanded k-reciprocal sets, row-major and unique."""
        k1, half = self.k1, round(self.k1 / 2)  # half to even, as numpy's around
        fwd, fwd_half = ranked[:, : k1 + 1], ranked[:, : half + 1]
        num = fwd.shape[0]
        rows_out, cols_out = [], []
        step = max(1, (1 << 22) // (fwd.shape[1] ** 2 * fwd_half.shape[1]))
        recip_half = torch.cat(
            [_reciprocal_rows(fwd_half, slice(s, s + step * 4)) for s in range(0, num, step * 4)]
        )
        for start in range(0, num, step):
            rows = slice(start, start + step)
            block = fwd[rows]
            recip = _reciprocal_rows(fwd, rows)
            cand_idx, cand_mask = fwd_half[block], recip_half[block]  # (c, k1+1, half+1)
            in_r = (cand_idx[..., None] == block[:, None, None, :]) & recip[:, None, None, :]
            overlap = (in_r.any(-1) & cand_mask).sum(-1)
            expand = recip & (overlap > 2.0 / 3.0 * cand_mask.sum(-1))
            ids = torch.arange(start, start + block.shape[0])
            r1, c1 = ids[:, None].expand_as(block)[recip], block[recip]
            keep = expand[..., None] & cand_mask
            r2, c2 = ids[:, None, None].expand_as(cand_idx)[keep], cand_idx[keep]
            key = torch.unique(torch.cat([r1, r2]) * num + torch.cat([c1, c2]), sorted=True)
            rows_out.append(key // num)
            cols_out.append(key % num)
        return torch.cat(rows_out), torch.cat(cols_out)

    def _weights(self, rows: Tensor, cols: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """V: ``exp(-d)`` over each row's members, normalised to sum 1 per row."""
        num = self.num_q + self.num_g
        step = max(1, CHUNK_ELEMENTS // self.prepared[0].shape[1])  # pairs x D gathered at once
        vals = torch.cat(
            [
                self._pair_squared(rows[s : s + step], cols[s : s + step])
                for s in range(0, rows.numel(), step)
            ]
        )
        vals = torch.exp(-(vals / self.row_max[rows]))
        totals = torch.zeros(num, dtype=self.dtype).index_add_(0, rows, vals)
        return rows, cols, vals / totals[rows]

    def _expand_queries(
        self, rows: Tensor, cols: Tensor, vals: Tensor, nearest: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Local query expansion: each row of V becomes the mean of its k2 nearest rows."""
        num, k2 = nearest.shape
        ptr = _csr_ptr(rows, num)
        per_row = (ptr[1:] - ptr[:-1])[nearest].sum(1)  # entries gathered for each row
        out_rows, out_cols, out_vals = [], [], []
        start = 0
        while start < num:
            stop = start + 1 + int(torch.searchsorted(per_row[start:].cumsum(0), PAIR_CHUNK))
            stop = min(stop, num)
            block = nearest[start:stop].reshape(-1)
            pos, owner = _gather_rows(ptr, block)
            target = torch.arange(start, stop).repeat_interleave(k2)[owner]
            r, c, v = _coalesce(target, cols[pos], vals[pos], num)
            out_rows.append(r)
            out_cols.append(c)
            out_vals.append(v / k2)
            start = stop
        return torch.cat(out_rows), torch.cat(out_cols), torch.cat(out_vals)

    def chunks(self, chunk_size: int | None = None) -> Iterator[tuple[slice, Tensor]]:
        """Yield ``(query rows, re-ranked distances (c, G))`` over all queries in order."""
        step = int(chunk_size or max(1, OUTPUT_ELEMENTS // self.num_g))
        with self._bar(self.num_q, 'rerank: queries') as bar:
            for start in range(0, self.num_q, step):
                rows = slice(start, min(start + step, self.num_q))
                yield rows, self._rows(rows)
                bar.update(rows.stop - rows.start)

    def distances(self) -> Tensor:
        """All re-ranked distances (Q, G); for sets where Q×G fits in memory."""
        return torch.cat([dist for _, dist in self.chunks()])

    def _rows(self, rows: slice) -> Tensor:
        num_rows = rows.stop - rows.start
        shared = torch.zeros(num_rows * self.num_g, dtype=self.dtype)
        q_pos = torch.arange(int(self.q_ptr[rows.start]), int(self.q_ptr[rows.stop]))
        q_owner = torch.repeat_interleave(
            torch.arange(num_rows), self.q_ptr[rows.start + 1 : rows.stop + 1] - self.q_ptr[rows]
        )
        q_cols = self.q_cols[q_pos]
        pairs = (self.g_ptr[q_cols + 1] - self.g_ptr[q_cols]).cumsum(0)
        start = 0
        while start < q_pos.numel():
            offset = int(pairs[start - 1]) if start else 0
            stop = start + 1 + int(torch.searchsorted(pairs[start:], offset + PAIR_CHUNK))
            stop = min(stop, q_pos.numel())
            cols = q_cols[start:stop]
            g_pos, owner = _gather_rows(self.g_ptr, cols)
            mins = torch.minimum(self.q_vals[q_pos[start:stop]][owner], self.g_vals[g_pos])
            target = q_owner[start:stop][owner] * self.num_g + self.g_rows[g_pos]
            shared.index_add_(0, target, mins)
            start = stop
        shared = shared.view(num_rows, self.num_g)
        jaccard = 1.0 - shared / (2.0 - shared)
        original = self._squared(rows, slice(self.num_q, None)).div_(self.row_max[rows, None])
        return jaccard * (1.0 - self.lambda_value) + original * self.lambda_value


def _reciprocal_rows(fwd: Tensor, rows: slice) -> Tensor:
    """:func:`_reciprocal` for ``rows`` of ``fwd`` only: mask (c, k)."""
    block = fwd[rows]
    ids = torch.arange(rows.start, rows.start + block.shape[0])[:, None, None]
    return (fwd[block] == ids).any(-1)
