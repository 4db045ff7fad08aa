"""Gallery indexes: built once from embeddings, saved, extended and searched (faiss or torch)."""

from promptsg.retrieval.backends import INDEX_TYPES, import_faiss, index_config
from promptsg.retrieval.fingerprint import model_fingerprint
from promptsg.retrieval.index import GalleryIndex, IndexHits

__all__ = [
    'INDEX_TYPES',
    'GalleryIndex',
    'IndexHits',
    'import_faiss',
    'index_config',
    'model_fingerprint',
]
