"""k-reciprocal re-ranking (Zhong et al., "Re-ranking Person Re-identification with k-reciprocal
Encoding", CVPR 2017), vectorised in torch.

Follows the authors' release step by step: the (Q+G, Q+G) distances are squared and each row is
divided by its column's maximum; neighbour lists come from a stable sort (ties: lower index
first); R(i, k1) = {j in N(i, k1+1) : i in N(j, k1+1)}; each k-reciprocal candidate c adds its
R(c, round(k1/2)) when more than 2/3 of that set lies in R(i, k1); V(i) = softmax-like weights
``exp(-d)`` on the expanded set; local query expansion averages V over the k2 nearest rows; the
Jaccard distance uses ``sum min(V_i, V_j)`` and the result is ``(1-lambda)*jaccard +
lambda*original``. Memory is O((Q+G)^2): meant for evaluation sets of a few thousand images.
"""

from __future__ import annotations

import torch
from torch import Tensor

from promptsg.errors import ConfigError, DataError


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
    if int(k1) < 1 or int(k2) < 1:
        raise ConfigError(f'rerank k1={k1}, k2={k2} are not valid; both must be >= 1')
    if not 0.0 <= float(lambda_value) <= 1.0:
        raise ConfigError(f'rerank lambda_value={lambda_value} is not valid; choose it in [0, 1]')
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
