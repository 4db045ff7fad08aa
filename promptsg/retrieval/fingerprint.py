"""Fingerprints of the model behind a set of features, stored in a GalleryIndex.

Two feature sets are comparable only when the same weights embedded the images with the same
preprocessing and prompt: the fingerprint hashes the model's parameters and buffers, the test
pipeline, the prompt mode and the aspect words, and records the feature dimension.
"""

from __future__ import annotations

import hashlib
import json

import torch


def model_fingerprint(
    model: torch.nn.Module, pipeline: list, prompt: str, aspect: str, dim: int
) -> str:
    """``'<sha256 hex>-d<dim>'`` of the state dict (names, shapes, bytes) and settings."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f'{name}:{tuple(tensor.shape)}:{tensor.dtype};'.encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b'')
    settings = {'pipeline': pipeline, 'prompt': prompt, 'aspect': aspect}
    digest.update(json.dumps(settings, sort_keys=True, default=str).encode())
    return f'{digest.hexdigest()}-d{int(dim)}'
