"""Nearest-neighbour search by inner product: faiss indexes (exact and approximate) or an exact
torch fallback when faiss is not installed.

Index types (``index_cfg['type']``):

* ``flat``: exact search (faiss ``IndexFlatIP``, or the torch fallback);
* ``ivf``: inverted lists over ``nlist`` k-means cells, ``nprobe`` cells searched
  (``IndexIVFFlat``); ``train_size`` images (a seeded random sample; None: all, of which faiss
  keeps at most 256 per cell) learn the cells;
* ``hnsw``: a graph of ``m`` links per node, ``ef_construction`` / ``ef_search`` beam widths
  (``IndexHNSWFlat``);
* ``ivfpq``: inverted lists of product-quantised codes, ``pq_m`` sub-vectors of ``pq_bits`` bits
  (``IndexIVFPQ``): about ``pq_m`` bytes per image instead of ``4 * D``.

Features are L2-normalised, so inner product is cosine similarity.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from promptsg.errors import ConfigError, DataError

INDEX_TYPES = ('flat', 'ivf', 'hnsw', 'ivfpq')
BACKENDS = ('auto', 'faiss', 'torch')
#: Options of each index type and their defaults (``nlist`` None: about 4 * sqrt(N)).
INDEX_OPTIONS = {
    'flat': {},
    'ivf': {'nlist': None, 'nprobe': 16, 'train_size': None},
    'hnsw': {'m': 32, 'ef_construction': 80, 'ef_search': 64},
    'ivfpq': {'nlist': None, 'nprobe': 16, 'pq_m': 64, 'pq_bits': 8, 'train_size': None},
}
FAISS_HINT = 'pip install faiss-cpu (or pip install promptsg[faiss])'
#: Gallery rows scored at once by the torch fallback.
TORCH_CHUNK = 1 << 16


def import_faiss():
    """The faiss module, or None when it is not installed."""
    try:
        import faiss
    except ImportError:
        return None
    return faiss


def index_config(index_cfg: dict | str | None) -> dict:
    """A complete index config: ``type`` plus that type's options, defaults filled in."""
    if index_cfg is None:
        index_cfg = {'type': 'flat'}
    if isinstance(index_cfg, str):
        index_cfg = {'type': index_cfg}
    if not isinstance(index_cfg, dict):
        raise ConfigError(f'index config {index_cfg!r} is not valid; give a dict with a type')
    cfg = dict(index_cfg)
    kind = cfg.pop('type', 'flat')
    if kind not in INDEX_TYPES:
        raise ConfigError(
            f"index type '{kind}' is not valid; choose one of: {', '.join(INDEX_TYPES)}"
        )
    defaults = INDEX_OPTIONS[kind]
    unknown = sorted(set(cfg) - set(defaults))
    if unknown:
        valid = ', '.join(defaults) or 'none'
        raise ConfigError(f"index type '{kind}' has no option(s) {unknown}; valid: {valid}")
    for key, value in cfg.items():
        if value is not None and (not isinstance(value, int) or value < 1):
            raise ConfigError(f'index option {key}={value!r} is not valid; give a positive int')
    return {'type': kind, **defaults, **cfg}


def resolve_backend(kind: str, backend: str) -> str:
    """'faiss' or 'torch' for index ``kind``; ConfigError naming the install when faiss is needed."""
    if backend not in BACKENDS:
        raise ConfigError(
            f"index backend '{backend}' is not valid; choose one of: {', '.join(BACKENDS)}"
        )
    if backend == 'torch':
        if kind != 'flat':
            raise ConfigError(
                f"index type '{kind}' needs faiss; the torch backend is exact ('flat') only"
            )
        return 'torch'
    if import_faiss() is None:
        if backend == 'faiss' or kind != 'flat':
            raise ConfigError(
                f"index type '{kind}' needs faiss, which is not installed: {FAISS_HINT} "
                "(type 'flat' works without it)"
            )
        return 'torch'
    return 'faiss'


class TorchFlat:
    """Exact inner-product search over features (N, D) held as a float32 tensor."""

    kind = 'flat'
    backend = 'torch'

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self.feats = torch.empty(0, dim)

    @property
    def ntotal(self) -> int:
        return self.feats.shape[0]

    def train(self, feats: np.ndarray) -> None:
        """Nothing to learn for exact search."""

    def add(self, feats: np.ndarray) -> None:
        self.feats = torch.cat([self.feats, torch.from_numpy(feats)])

    def search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (Q, k) scores and rows, best first, ties to the lower row; -1 past the end."""
        query_t = torch.from_numpy(query)
        best = torch.full((query_t.shape[0], 0), -math.inf)
        rows = torch.zeros((query_t.shape[0], 0), dtype=torch.int64)
        for start in range(0, self.ntotal, TORCH_CHUNK):
            sims = query_t @ self.feats[start : start + TORCH_CHUNK].T
            cand = torch.cat([best, sims], 1)
            cand_rows = torch.cat(
                [rows, torch.arange(start, start + sims.shape[1]).expand(sims.shape[0], -1)], 1
            )
            # stable: earlier (lower) rows win ties
            order = torch.argsort(-cand, dim=1, stable=True)[:, :k]
            best, rows = cand.gather(1, order), cand_rows.gather(1, order)
        return _pad(best.numpy(), rows.numpy(), k)


def _pad(scores: np.ndarray, rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    if scores.shape[1] < k:
        extra = k - scores.shape[1]
        scores = np.pad(scores, ((0, 0), (0, extra)), constant_values=-np.inf)
        rows = np.pad(rows, ((0, 0), (0, extra)), constant_values=-1)
    return scores.astype(np.float32), rows.astype(np.int64)


class FaissIndex:
    """A faiss index of one of :data:`INDEX_TYPES` (inner-product metric)."""

    backend = 'faiss'

    def __init__(self, dim: int, cfg: dict, index=None) -> None:
        self.faiss = import_faiss()
        self.dim, self.cfg, self.kind = dim, cfg, cfg['type']
        self.index = index

    @property
    def ntotal(self) -> int:
        return 0 if self.index is None else int(self.index.ntotal)

    def _build(self, num_train: int):
        faiss, cfg, dim = self.faiss, self.cfg, self.dim
        ip = faiss.METRIC_INNER_PRODUCT
        if self.kind == 'flat':
            return faiss.IndexFlatIP(dim)
        if self.kind == 'hnsw':
            index = faiss.IndexHNSWFlat(dim, cfg['m'], ip)
            index.hnsw.efConstruction = cfg['ef_construction']
            return index
        nlist = cfg['nlist'] or max(1, min(int(4 * math.sqrt(num_train)), num_train // 39))
        if num_train < nlist:
            raise ConfigError(
                f"index type '{self.kind}' with nlist={nlist} needs at least {nlist} images to "
                f'train its cells; got {num_train} (lower nlist or use type flat/hnsw)'
            )
        self.cfg = cfg = dict(cfg, nlist=nlist)
        quantizer = faiss.IndexFlatIP(dim)
        if self.kind == 'ivf':
            return faiss.IndexIVFFlat(quantizer, dim, nlist, ip)
        if dim % cfg['pq_m']:
            raise ConfigError(
                f'index option pq_m={cfg["pq_m"]} must divide the feature dimension {dim}'
            )
        if num_train < 2 ** cfg['pq_bits']:
            raise ConfigError(
                f"index type 'ivfpq' with pq_bits={cfg['pq_bits']} needs at least "
                f'{2 ** cfg["pq_bits"]} images to train; got {num_train}'
            )
        return faiss.IndexIVFPQ(quantizer, dim, nlist, cfg['pq_m'], cfg['pq_bits'], ip)

    def train(self, feats: np.ndarray) -> None:
        """Build the index and learn its cells / codebooks from ``feats`` (N, D)."""
        self.index = self._build(feats.shape[0])
        if not self.index.is_trained:
            size = self.cfg.get('train_size')
            if size and size < feats.shape[0]:
                pick = np.random.default_rng(0).choice(feats.shape[0], size, replace=False)
                feats = feats[np.sort(pick)]
            self.index.train(feats)
        self._set_search_params()

    def _set_search_params(self) -> None:
        if self.kind in ('ivf', 'ivfpq'):
            self.index.nprobe = self.cfg['nprobe']
        elif self.kind == 'hnsw':
            self.index.hnsw.efSearch = self.cfg['ef_search']

    def add(self, feats: np.ndarray) -> None:
        self.index.add(feats)

    def search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        scores, rows = self.index.search(query, min(k, max(self.ntotal, 1)))
        scores = np.where(rows < 0, -np.inf, scores)
        return _pad(scores, rows, k)

    def serialize(self) -> bytes:
        return self.faiss.serialize_index(self.index).tobytes()

    @classmethod
    def deserialize(cls, data: bytes, dim: int, cfg: dict, where: str) -> FaissIndex:
        faiss = import_faiss()
        try:
            index = faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))
        except RuntimeError as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise DataError(
                f'index file {where} is corrupted: faiss cannot read it ({first})'
            ) from None
        if index.d != dim:
            raise DataError(
                f'index file {where}: its faiss index holds {index.d}-d vectors but the metadata '
                f'says {dim}-d (metadata and index out of step)'
            )
        out = cls(dim, cfg, index)
        out._set_search_params()
        return out
