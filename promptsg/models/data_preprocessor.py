"""Batch preparation: uint8 images to normalised float tensors on the model's device."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from mmengine.model import BaseDataPreprocessor

from promptsg.datasets.transforms import CLIP_MEAN, CLIP_STD
from promptsg.registry import MODELS


@MODELS.register_module()
class ReIDDataPreprocessor(BaseDataPreprocessor):
    """Cast ``inputs`` (B, 3, H, W) uint8 to float, scale to 0-1 and normalise with ``mean``/``std``.

    It is the only place images are normalised, so training, validation and test see the same
    statistics (SPEC §5.2). ``data_samples`` tensors are moved to the device with the images.
    """

    def __init__(self, mean: Sequence[float] = CLIP_MEAN, std: Sequence[float] = CLIP_STD) -> None:
        super().__init__(non_blocking=True)  # with pinned loaders the uint8 copy overlaps
        self.register_buffer('mean', torch.tensor(mean).view(1, 3, 1, 1) * 255, persistent=False)
        self.register_buffer('std', torch.tensor(std).view(1, 3, 1, 1) * 255, persistent=False)

    def forward(self, data: dict, training: bool = False) -> dict:
        data = self.cast_data(data)
        inputs = data['inputs']
        if isinstance(inputs, (list, tuple)):
            inputs = torch.stack(list(inputs))
        inputs = (inputs.float() - self.mean) / self.std
        return {'inputs': inputs, 'data_samples': data.get('data_samples')}
