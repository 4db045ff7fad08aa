"""Average query expansion (AQE) and its alpha-weighted variant (alpha-QE, Radenovic et al. 2018),
as fast-reid's ``aqe``: every query and gallery feature is replaced by the weighted mean of its
``k`` most similar features (itself included) over the union of query and gallery.

With cosine similarities ``s`` of the L2-normalised features, one round maps feature ``f_i`` to
``mean_{j in N(i, k)} f_j * s_ij ** alpha`` (``alpha = 0``: plain AQE); ``times`` rounds repeat
it, the neighbours of each later round coming from the previous round's features. ``N(i, k)`` is
the k largest similarities of row i with ties to the lower index (fast-reid's ``argpartition``
leaves ties unordered). Memory is O(N·k) beyond the features: similarities are computed a chunk of
rows at a time. For non-integer ``alpha`` negative similarities are clamped at 0 (fast-reid's
``np.power`` would give NaN).
"""

from __future__ import annotations

import torch
from torch import Tensor

from promptsg.errors import ConfigError, DataError
from promptsg.evaluation.distance import check_feature_pair, stable_topk

#: Similarities held at once.
CHUNK_ELEMENTS = 1 << 24


def check_query_expansion(k: int, alpha: float, times: int) -> None:
    """ConfigError naming the bad parameter unless k >= 1, alpha >= 0 and times >= 1."""
    if int(k) < 1 or int(times) < 1:
        raise ConfigError(f'query_expansion k={k}, times={times} are not valid; both must be >= 1')
    if float(alpha) < 0:
        raise ConfigError(f'query_expansion alpha={alpha} is not valid; give alpha >= 0')


def _round(feats: Tensor, k: int, alpha: float) -> Tensor:
    num = feats.shape[0]
    normed = torch.nn.functional.normalize(feats, dim=1)
    chunk = max(1, CHUNK_ELEMENTS // num)
    out = torch.empty_like(feats)
    for start in range(0, num, chunk):
        sim = normed[start : start + chunk] @ normed.T
        nearest = stable_topk(sim.neg(), k)  # (c, k) most similar first
        weights = sim.gather(1, nearest)
        if float(alpha) != int(alpha):
            weights = weights.clamp_min(0.0)
        weights = weights.pow(alpha)
        out[start : start + chunk] = (feats[nearest] * weights[..., None]).mean(1)
    return out


def average_query_expansion(
    query_feats: Tensor, gallery_feats: Tensor, k: int = 10, alpha: float = 3.0, times: int = 1
) -> tuple[Tensor, Tensor]:
    """Expanded query (Q, D) and gallery (G, D) features (not re-normalised, as fast-reid).

    ``alpha=0`` is plain AQE; fast-reid's defaults are ``k=10, alpha=3.0, times=1``.
    """
    check_query_expansion(k, alpha, times)
    query_feats, gallery_feats = check_feature_pair(
        torch.as_tensor(query_feats), torch.as_tensor(gallery_feats)
    )
    feats = torch.cat([query_feats, gallery_feats]).detach().cpu()
    if not bool(torch.isfinite(feats).all()):
        raise DataError('query expansion features must be finite; got NaN or inf')
    k = min(int(k), feats.shape[0])
    for _ in range(int(times)):
        feats = _round(feats, k, float(alpha))
    return feats[: query_feats.shape[0]], feats[query_feats.shape[0] :]
