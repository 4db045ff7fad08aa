"""Fingerprints of the model behind a set of features, stored in a GalleryIndex.

Two feature sets are comparable only when the same weights embedded the images with the same
preprocessing and prompt: the fingerprint hashes the model's parameters and buffers, the test
pipeline, the prompt mode and the aspect words (the feature dimension is stored and checked
beside it).
"""

from __future__ import annotations

import hashlib
import json

import torch


def model_fingerprint(model: torch.nn.Module, pipeline: list, prompt: str, aspect: str) -> str:
    """sha256 (hex) of the state dict (names, shapes, dtypes, bytes) and the settings."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f'{name}:{tuple(tensor.shape)}:{tensor.dtype};'.encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    settings = {'pipeline': pipeline, 'prompt': prompt, 'aspect': aspect}
    digest.update(json.dumps(settings, sort_keys=True, default=str).encode())
    return digest.hexdigest()
