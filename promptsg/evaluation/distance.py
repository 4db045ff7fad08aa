"""Query-gallery distances (cosine or Euclidean) through one matrix product, and stable top-k."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from promptsg.errors import ConfigError, DataError

DISTANCE_METRICS = ('cosine', 'euclidean')


def check_choice(name: str, value: str, choices: Sequence[str]) -> None:
    """Raise ConfigError naming option ``name`` when ``value`` is not one of ``choices``."""
    if value not in choices:
        raise ConfigError(f"{name}='{value}' is not valid; choose one of: {', '.join(choices)}")


def check_feature_pair(query: Tensor, gallery: Tensor) -> tuple[Tensor, Tensor]:
    """(Q, D) and (G, D) features of one floating dtype, else a DataError naming the shapes."""
    if query.dim() != 2 or gallery.dim() != 2 or query.shape[1] != gallery.shape[1]:
        raise DataError(
            f'query and gallery features must be (Q, D) and (G, D); got '
            f'{tuple(query.shape)} and {tuple(gallery.shape)}'
        )
    if not query.is_floating_point():
        query = query.float()
    return query, gallery.to(query.dtype)


def prepare_features(feats: Tensor, metric: str) -> tuple[Tensor, Tensor | None]:
    """Features ready for :func:`prepared_distance`: L2-normalised (cosine) or with squared norms."""
    if metric == 'cosine':
        return torch.nn.functional.normalize(feats, dim=1), None
    return feats, feats.pow(2).sum(1)


def prepared_distance(query: tuple, gallery: tuple, metric: str) -> Tensor:
    """Distances (Q, G) between two :func:`prepare_features` results."""
    (q, q_sq), (g, g_sq) = query, gallery
    if metric == 'cosine':
        return torch.mm(q, g.T).neg_().add_(1.0)
    return torch.addmm(g_sq, q, g.T, alpha=-2.0).add_(q_sq[:, None]).clamp_min_(0.0).sqrt_()


def pairwise_distance(query: Tensor, gallery: Tensor, metric: str = 'cosine') -> Tensor:
    """Distances (Q, G) between query (Q, D) and gallery (G, D) features.

    ``cosine``: ``1 - cos(q, g)`` (features are L2-normalised here); ``euclidean``: the true
    (not squared) L2 distance, computed through one matrix product and clamped at 0.
    """
    check_choice('metric', metric, DISTANCE_METRICS)
    query, gallery = check_feature_pair(query, gallery)
    return prepared_distance(
        prepare_features(query, metric), prepare_features(gallery, metric), metric
    )


def sort_key(values: Tensor) -> Tensor:
    """int64 keys that sort like finite float ``values`` (integer sorts are much faster).

    IEEE bits order non-negative floats; negative ones get their magnitude bits flipped.
    ``-0.0`` is first turned into ``0.0`` so that the two tie, as they compare equal.
    """
    values = (values if values.dtype == torch.float64 else values.float()) + 0.0
    if values.dtype == torch.float64:
        bits, magnitude = values.view(torch.int64), 0x7FFFFFFFFFFFFFFF
    else:
        bits, magnitude = values.view(torch.int32), 0x7FFFFFFF
    return torch.where(bits < 0, bits ^ magnitude, bits).long()


def stable_topk(dist: Tensor, k: int) -> Tensor:
    """Indices (c, k) of each row's ``k`` smallest entries in stable order (ties: lower index).

    ``torch.topk`` gives each row's k-th smallest value; every entry not above it is a candidate
    and only those few are sorted by (value, index), so the result equals the first k columns
    of a stable argsort without sorting whole rows.
    """
    num_rows, num_cols = dist.shape
    k = min(int(k), num_cols)
    kth = torch.topk(dist, k, dim=1, largest=False, sorted=True).values[:, -1:]
    rows, cols = (dist <= kth).nonzero(as_tuple=True)  # row-major, ascending column per row
    order = torch.argsort(sort_key(dist[rows, cols]), stable=True)
    order = order[torch.argsort(rows[order], stable=True)]
    rows, cols = rows[order], cols[order]
    counts = torch.bincount(rows, minlength=num_rows)
    place = torch.arange(rows.numel()) - (torch.cumsum(counts, 0) - counts)[rows]
    return cols[place < k].view(num_rows, k)
