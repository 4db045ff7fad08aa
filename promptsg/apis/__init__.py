"""Inference: embeddings of images, gallery search, result grids and ONNX export."""

from promptsg.apis.grid import draw_result_grid, grid_size
from promptsg.apis.images import ImageRecord, collect_images
from promptsg.apis.inferencer import ReIDInferencer
from promptsg.apis.onnx_export import EmbeddingGraph, compare_onnx, export_onnx
from promptsg.apis.retrieval import SearchResult, search_records, topk_search

__all__ = [
    'EmbeddingGraph',
    'ImageRecord',
    'ReIDInferencer',
    'SearchResult',
    'collect_images',
    'compare_onnx',
    'draw_result_grid',
    'export_onnx',
    'grid_size',
    'search_records',
    'topk_search',
]
