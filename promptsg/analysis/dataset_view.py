"""A data set at a glance: its statistics per configured split, and a grid of samples as the
training pipeline delivers them (augmented, resized; before the model's normalisation)."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from promptsg.errors import DataError

BACKGROUND = (255, 255, 255)
TEXT_COLOUR = (0, 0, 0)


def pick_samples(dataset, num_ids: int, per_id: int, seed: int = 0) -> list[int]:
    """Indices of ``per_id`` images of each of ``num_ids`` identities (a P×K batch), drawn with
    ``seed`` among the identities that have ``per_id`` images; when too few have, the
    identities with the most images are taken and give what they have."""
    by_pid: dict[int, list[int]] = {}
    for idx in range(len(dataset)):
        by_pid.setdefault(int(dataset.get_data_info(idx)['pid']), []).append(idx)
    if not by_pid:
        raise DataError(f'{type(dataset).__name__} has no samples to draw')
    rng = np.random.default_rng(seed)
    full = sorted(p for p, idxs in by_pid.items() if len(idxs) >= per_id)
    if len(full) >= num_ids:
        pids = sorted(rng.choice(full, size=num_ids, replace=False).tolist())
    else:
        pids = sorted(sorted(by_pid, key=lambda p: (-len(by_pid[p]), p))[:num_ids])
    picked = []
    for pid in pids:
        idxs = by_pid[pid]
        picked += sorted(rng.choice(idxs, size=min(per_id, len(idxs)), replace=False).tolist())
    return picked


def sample_grid(rows: list[list[tuple[np.ndarray, str]]], caption: int = 14, gap: int = 4):
    """One row per identity: its (H, W, 3) uint8 images, all of one size, each above its
    caption. Returns a PIL image."""
    cells = [cell for row in rows for cell in row]
    if not cells:
        raise DataError('no images to draw')
    h, w = cells[0][0].shape[:2]
    cols = max(len(row) for row in rows)
    size = (gap + cols * (w + gap), gap + len(rows) * (h + caption + gap))
    grid = Image.new('RGB', size, BACKGROUND)
    draw = ImageDraw.Draw(grid)
    font = ImageFont.load_default()
    for r, row in enumerate(rows):
        for c, (image, text) in enumerate(row):
            x, y = gap + c * (w + gap), gap + r * (h + caption + gap)
            grid.paste(Image.fromarray(image), (x, y))
            draw.text((x + 1, y + h + 1), text, fill=TEXT_COLOUR, font=font)
    return grid


def pipeline_image(sample: dict) -> np.ndarray:
    """The ``inputs`` (3, H, W) uint8 of a packed sample as an (H, W, 3) array."""
    inputs = sample['inputs']
    array = inputs.numpy() if hasattr(inputs, 'numpy') else np.asarray(inputs)
    return np.ascontiguousarray(array.transpose(1, 2, 0)).astype(np.uint8)
