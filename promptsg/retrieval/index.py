"""GalleryIndex: a searchable gallery of L2-normalised embeddings with their image metadata.

Built once (``GalleryIndex.build``), extended with new images (``add``), saved to one file and
loaded again (``save`` / ``GalleryIndex.load``), and queried (``search``) with the metric's
camera rule when cameras are known. Beside the vectors it keeps, per image, the path, pid
(a string, None when unknown) and camid (-1 when unknown), and for the whole index the feature
dimension and a fingerprint of the model that produced the features, so that querying it with
another model's features is refused.

File format: a zip archive (stored, ZIP64) of ``meta.json`` (format, version, index config,
dimension, count, fingerprint), ``entries.json`` (paths, pids, camids) and either
``features.npy`` (type flat: portable, readable without faiss) or ``index.faiss`` (a serialised
faiss index). Zip CRCs detect corrupted members. ``save`` writes a temporary file beside the
target and renames it over the target only once complete, so a failed save leaves the previous
index intact.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from promptsg.engine.fileio import atomic_open
from promptsg.errors import ConfigError, DataError
from promptsg.retrieval.backends import (
    FaissIndex,
    TorchFlat,
    index_config,
    resolve_backend,
)

FORMAT, VERSION = 'promptsg-gallery-index', 1


@dataclass
class IndexHits:
    """Search results: ``rows`` (Q, k) index entries best first, -1 where fewer remain;
    ``scores`` (Q, k) cosine similarities (-inf at -1); ``candidates`` (Q,) entries each query
    could have returned (after self and camera filtering)."""

    rows: np.ndarray
    scores: np.ndarray
    candidates: np.ndarray


class GalleryIndex:
    """Embeddings (N, D) plus per-image path/pid/camid, searchable by cosine similarity.

    Args:
        dim: feature dimension D.
        index_cfg: ``'flat'``/``'ivf'``/``'hnsw'``/``'ivfpq'`` or a dict with ``type`` and its
            options (see :mod:`promptsg.retrieval.backends`).
        fingerprint: identifies the model (and its inference settings) behind the features.
        backend: ``'auto'`` (faiss when installed, else the exact torch search for ``flat``),
            ``'faiss'`` or ``'torch'``.
    """

    def __init__(
        self,
        dim: int,
        index_cfg: dict | str | None = None,
        fingerprint: str = '',
        backend: str = 'auto',
    ) -> None:
        if int(dim) < 1:
            raise ConfigError(f'index dimension must be >= 1, got {dim}')
        self.dim = int(dim)
        self.cfg = index_config(index_cfg)
        self.fingerprint = fingerprint
        self.backend_name = resolve_backend(self.cfg['type'], backend)
        self.vectors = TorchFlat(self.dim) if self.backend_name == 'torch' else None
        self.paths: list[str] = []
        self.pids: list[str | None] = []
        self.camids: list[int] = []

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def kind(self) -> str:
        return self.cfg['type']

    # ------------------------------------------------------------------ building
    @classmethod
    def build(
        cls,
        feats: np.ndarray,
        paths: Sequence[str],
        pids: Sequence[str | None] | None = None,
        camids: Sequence[int] | None = None,
        index_cfg: dict | str | None = None,
        fingerprint: str = '',
        backend: str = 'auto',
    ) -> GalleryIndex:
        """An index of ``feats`` (N, D); approximate types learn their cells from them."""
        feats = _as_feats(feats, None)
        index = cls(feats.shape[1], index_cfg, fingerprint, backend)
        index.add(feats, paths, pids, camids)
        return index

    def add(
        self,
        feats: np.ndarray,
        paths: Sequence[str],
        pids: Sequence[str | None] | None = None,
        camids: Sequence[int] | None = None,
    ) -> None:
        """Append images: features (n, D) and their paths, pids and camids."""
        feats = _as_feats(feats, self.dim)
        num = feats.shape[0]
        pids = [None] * num if pids is None else [None if p is None else str(p) for p in pids]
        camids = [-1] * num if camids is None else [int(c) for c in camids]
        if not (len(paths) == len(pids) == len(camids) == num):
            raise DataError(
                f'index add: {num} features but {len(paths)} paths, {len(pids)} pids and '
                f'{len(camids)} camids'
            )
        if self.vectors is None:
            self.vectors = FaissIndex(self.dim, self.cfg)
            self.vectors.train(feats)
            self.cfg = self.vectors.cfg
        self.vectors.add(feats)
        self.paths += [os.fspath(p) for p in paths]
        self.pids += pids
        self.camids += camids

    # ------------------------------------------------------------------ searching
    def check_query(self, feats: np.ndarray, fingerprint: str | None = None) -> np.ndarray:
        """``feats`` as float32 (Q, D) for this index, else a DataError saying what differs."""
        if fingerprint is not None and self.fingerprint and fingerprint != self.fingerprint:
            raise DataError(
                f'the index was built with another model (fingerprint {self.fingerprint[:12]}, '
                f'this model {fingerprint[:12]}): rebuild it with tools/extract.py '
                '--gallery-index, or query it with the model that built it'
            )
        return _as_feats(feats, self.dim, 'query')

    def search(
        self,
        query_feats: np.ndarray,
        topk: int = 5,
        q_pids: Sequence[str | None] | None = None,
        q_camids: Sequence[int] | None = None,
        q_paths: Sequence[str] | None = None,
        camera_filter: bool = True,
        fingerprint: str | None = None,
    ) -> IndexHits:
        """Top-k entries per query (Q, D) by cosine similarity.

        Removed from each query's results: entries with the query's path (``q_paths``), and
        with ``camera_filter``, entries with the query's pid AND camid when both are known
        (camid >= 0), the rule of the ReID metric. Approximate indexes search deeper until
        enough unfiltered results are found or the whole index was searched.
        """
        if int(topk) < 1:
            raise ConfigError(f'topk must be >= 1, got {topk}')
        query = self.check_query(query_feats, fingerprint)
        num_q, topk = query.shape[0], int(topk)
        excluded = self._excluded(num_q, q_pids, q_camids, q_paths, camera_filter)
        candidates = len(self) - np.array([len(e) for e in excluded], dtype=np.int64)
        if len(self) == 0:
            empty = np.full((num_q, topk), -1, dtype=np.int64)
            return IndexHits(empty, np.full((num_q, topk), -np.inf, np.float32), candidates)
        need = np.minimum(topk, candidates)
        depth = min(len(self), topk + max(len(e) for e in excluded))
        while True:
            scores, rows = self.vectors.search(query, depth)
            out_rows, out_scores = _filter(rows, scores, excluded, topk)
            if bool(((out_rows >= 0).sum(1) >= need).all()) or depth >= len(self):
                return IndexHits(out_rows, out_scores, candidates)
            depth = min(len(self), depth * 2)

    def _excluded(self, num_q, q_pids, q_camids, q_paths, camera_filter) -> list[set[int]]:
        """Entry rows each query must not return."""
        excluded: list[set[int]] = [set() for _ in range(num_q)]
        for name, values in (('q_pids', q_pids), ('q_camids', q_camids), ('q_paths', q_paths)):
            if values is not None and len(values) != num_q:
                raise DataError(f'{name} has {len(values)} entries; expected {num_q}')
        if q_paths is not None:
            by_path: dict[str, list[int]] = {}
            for row, path in enumerate(self.paths):
                by_path.setdefault(os.path.realpath(path), []).append(row)
            for q, path in enumerate(q_paths):
                excluded[q].update(by_path.get(os.path.realpath(os.fspath(path)), ()))
        if camera_filter and q_pids is not None and q_camids is not None:
            by_identity: dict[tuple[str, int], list[int]] = {}
            for row, (pid, camid) in enumerate(zip(self.pids, self.camids)):
                if pid is not None and camid >= 0:
                    by_identity.setdefault((pid, camid), []).append(row)
            for q, (pid, camid) in enumerate(zip(q_pids, q_camids)):
                if pid is not None and int(camid) >= 0:
                    excluded[q].update(by_identity.get((str(pid), int(camid)), ()))
        return excluded

    @property
    def cameras_known(self) -> bool:
        """Whether every entry has a known pid and camera."""
        return bool(self.paths) and all(
            p is not None and c >= 0 for p, c in zip(self.pids, self.camids)
        )

    # ------------------------------------------------------------------ files
    def save(self, path: str | os.PathLike) -> None:
        """Write the index to ``path`` atomically (a temporary file renamed over it)."""
        with atomic_open(path) as f:
            self._write(f)

    def _write(self, file) -> None:
        meta = {
            'format': FORMAT,
            'version': VERSION,
            'index': self.cfg,
            'dim': self.dim,
            'count': len(self),
            'fingerprint': self.fingerprint,
        }
        entries = {'paths': self.paths, 'pids': self.pids, 'camids': self.camids}
        with zipfile.ZipFile(file, 'w', zipfile.ZIP_STORED, allowZip64=True) as zf:
            zf.writestr('meta.json', json.dumps(meta, indent=1))
            zf.writestr('entries.json', json.dumps(entries))
            if self.kind == 'flat':
                with zf.open('features.npy', 'w', force_zip64=True) as member:
                    np.save(member, self._flat_features())
            else:
                with zf.open('index.faiss', 'w', force_zip64=True) as member:
                    member.write(self.vectors.serialize())

    def _flat_features(self) -> np.ndarray:
        vectors = self.vectors
        if vectors is None:
            return np.zeros((0, self.dim), np.float32)
        if isinstance(vectors, TorchFlat):
            return vectors.feats.numpy()
        return vectors.index.reconstruct_n(0, vectors.ntotal)

    @classmethod
    def load(cls, path: str | os.PathLike, backend: str = 'auto') -> GalleryIndex:
        """Read an index written by :meth:`save`; DataError naming the problem otherwise."""
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise DataError(f'index file not found: {path}')
        try:
            with zipfile.ZipFile(path) as zf:
                meta = _read_json(zf, 'meta.json', path)
                _check_meta(meta, path)
                entries = _read_json(zf, 'entries.json', path)
                member = 'features.npy' if meta['index']['type'] == 'flat' else 'index.faiss'
                data = zf.read(member)
        except zipfile.BadZipFile as e:
            raise DataError(f'index file {path} is corrupted or not an index ({e})') from None
        except KeyError as e:
            raise DataError(f'index file {path} is incomplete: no member {e}') from None
        index = cls(meta['dim'], meta['index'], meta['fingerprint'], backend)
        lengths = {k: len(entries.get(k, ())) for k in ('paths', 'pids', 'camids')}
        if set(lengths.values()) != {meta['count']}:
            raise DataError(
                f'index file {path}: metadata and index out of step (count {meta["count"]}, '
                f'entries {lengths})'
            )
        if meta['index']['type'] == 'flat':
            try:
                feats = np.load(io.BytesIO(data), allow_pickle=False)
            except ValueError as e:
                raise DataError(f'index file {path} is corrupted: features.npy ({e})') from None
            ntotal = feats.shape[0] if feats.ndim == 2 and feats.shape[1] == meta['dim'] else -1
            if ntotal < 0:
                raise DataError(
                    f'index file {path}: features are {feats.shape} but the metadata says '
                    f'{meta["dim"]}-d (metadata and index out of step)'
                )
            index.vectors = TorchFlat(index.dim) if index.backend_name == 'torch' else None
            if index.vectors is None:
                index.vectors = FaissIndex(index.dim, index.cfg)
                index.vectors.train(feats[:0])
            if ntotal:
                index.vectors.add(np.ascontiguousarray(feats, dtype=np.float32))
        else:
            index.vectors = FaissIndex.deserialize(data, index.dim, index.cfg, path)
        if index.vectors.ntotal != meta['count']:
            raise DataError(
                f'index file {path}: metadata and index out of step ({meta["count"]} entries, '
                f'{index.vectors.ntotal} vectors)'
            )
        index.paths, index.camids = list(entries['paths']), [int(c) for c in entries['camids']]
        index.pids = [None if p is None else str(p) for p in entries['pids']]
        return index


def _as_feats(feats, dim: int | None, what: str = 'index') -> np.ndarray:
    feats = np.asarray(feats)
    if feats.ndim != 2 or feats.shape[0] == 0:
        raise DataError(f'{what} features must be a non-empty (N, D) array; got {feats.shape}')
    if dim is not None and feats.shape[1] != dim:
        raise DataError(
            f'{what} features are {feats.shape[1]}-d but the index holds {dim}-d features '
            '(built with another model or feature size?)'
        )
    if not np.issubdtype(feats.dtype, np.floating) or not np.isfinite(feats).all():
        raise DataError(f'{what} features must be finite floats; got {feats.dtype} with NaN/inf')
    return np.ascontiguousarray(feats, dtype=np.float32)


def _filter(rows: np.ndarray, scores: np.ndarray, excluded: list[set[int]], topk: int):
    """Drop excluded rows per query, keep the first ``topk``: (rows, scores) (Q, topk)."""
    num_q, width = rows.shape[0], min(topk, rows.shape[1])
    out_rows = np.full((num_q, topk), -1, dtype=np.int64)
    out_scores = np.full((num_q, topk), -np.inf, dtype=np.float32)
    if not any(excluded):
        out_rows[:, :width], out_scores[:, :width] = rows[:, :width], scores[:, :width]
        return out_rows, out_scores
    for q in range(num_q):
        keep = [j for j, r in enumerate(rows[q]) if r >= 0 and r not in excluded[q]][:topk]
        out_rows[q, : len(keep)] = rows[q, keep]
        out_scores[q, : len(keep)] = scores[q, keep]
    return out_rows, out_scores


def _read_json(zf: zipfile.ZipFile, name: str, path: str) -> dict:
    try:
        value = json.loads(zf.read(name))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(f'index file {path} is corrupted: {name} is not JSON ({e})') from None
    if not isinstance(value, dict):
        raise DataError(f'index file {path} is corrupted: {name} is not an object')
    return value


def _check_meta(meta: dict, path: str) -> None:
    if meta.get('format') != FORMAT:
        raise DataError(f'{path} is not a promptsg gallery index (format {meta.get("format")!r})')
    if meta.get('version') != VERSION:
        raise DataError(f'index file {path} has version {meta.get("version")}; expected {VERSION}')
    for key in ('index', 'dim', 'count', 'fingerprint'):
        if key not in meta:
            raise DataError(f'index file {path} is corrupted: meta.json has no {key!r}')
