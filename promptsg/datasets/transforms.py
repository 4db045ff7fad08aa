"""Image transforms on a sample dict: load, geometry, erasing, and packing for the model.

Images stay ``uint8`` tensors (3, H, W) from loading to packing; the model's data preprocessor
normalises them with the CLIP mean/std, so train, val and test are normalised the same way.
Random draws use torch's generator, which mmengine seeds per worker.
"""

from __future__ import annotations

import numpy as np
import torch
import torchvision.transforms.v2.functional as F
from PIL import Image, UnidentifiedImageError
from torchvision.transforms import v2

from promptsg.errors import DataError
from promptsg.registry import TRANSFORMS

#: CLIP's normalisation, on the 0-1 scale.
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def _size(size: int | tuple[int, int] | list[int]) -> list[int]:
    return [size, size] if isinstance(size, int) else list(size)


@TRANSFORMS.register_module()
class LoadImage:
    """Read ``img_path`` (or take ``img``: PIL, HWC uint8 array or CHW tensor) into ``img`` (3, H, W) uint8."""

    def __call__(self, results: dict) -> dict:
        img = results.get('img')
        if img is None:
            path = results['img_path']
            try:
                with Image.open(path) as im:
                    img = im.convert('RGB')
            except (OSError, UnidentifiedImageError, Image.DecompressionBombError) as e:
                raise DataError(f'cannot read image {path}: {e}') from e
        if isinstance(img, Image.Image):
            img = F.pil_to_tensor(img.convert('RGB'))
        elif isinstance(img, np.ndarray):
            img = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)
        results['img'] = img
        results['ori_shape'] = tuple(img.shape[-2:])
        return results


class _ImageOp:
    """Apply a torchvision v2 transform to ``results['img']``."""

    op: v2.Transform

    def __call__(self, results: dict) -> dict:
        results['img'] = self.op(results['img'])
        return results


@TRANSFORMS.register_module()
class Resize(_ImageOp):
    """Resize to ``size`` = (H, W) (or an int for a square)."""

    def __init__(self, size: int | tuple[int, int]) -> None:
        self.op = v2.Resize(_size(size), interpolation=v2.InterpolationMode.BICUBIC, antialias=True)


@TRANSFORMS.register_module()
class RandomHorizontalFlip(_ImageOp):
    def __init__(self, prob: float = 0.5) -> None:
        self.op = v2.RandomHorizontalFlip(prob)


@TRANSFORMS.register_module()
class Pad(_ImageOp):
    def __init__(self, padding: int = 10, fill: int = 0) -> None:
        self.op = v2.Pad(padding, fill=fill)


@TRANSFORMS.register_module()
class RandomCrop(_ImageOp):
    def __init__(self, size: int | tuple[int, int]) -> None:
        self.op = v2.RandomCrop(_size(size))


@TRANSFORMS.register_module()
class ColorJitter(_ImageOp):
    def __init__(self, brightness=0.2, contrast=0.15, saturation=0.0, hue=0.0) -> None:
        self.op = v2.ColorJitter(brightness, contrast, saturation, hue)


@TRANSFORMS.register_module()
class RandomErasing(_ImageOp):
    """Random erasing (Zhong et al.) with a random-value fill, on the uint8 image."""

    def __init__(self, prob: float = 0.5, scale=(0.02, 0.4), ratio=(0.3, 3.33)) -> None:
        self.op = v2.RandomErasing(prob, scale=scale, ratio=ratio, value=0)

    def __call__(self, results: dict) -> dict:
        img = results['img']
        erased = self.op(img)
        if erased is not img:
            mask = erased != img
            noise = torch.randint(0, 256, img.shape, dtype=torch.uint8)
            erased = torch.where(mask.any(0, keepdim=True), noise, img)
        results['img'] = erased
        return results


@TRANSFORMS.register_module()
class PackReIDInputs:
    """Return ``{'inputs': (3, H, W) uint8, 'data_samples': {pid, camid, sample_idx, is_query,
    aspect, domain}}``; ``domain`` is the data set's name in a ``ConcatReIDDataset`` ('' else)."""

    def __call__(self, results: dict) -> dict:
        sample = {
            'pid': int(results['pid']),
            'camid': int(results.get('camid', -1)),
            'sample_idx': int(results.get('sample_idx', -1)),
            'is_query': bool(results.get('is_query', False)),
            'aspect': results.get('aspect', ''),
            'domain': results.get('domain', ''),
        }
        return {'inputs': results['img'], 'data_samples': sample}
