"""A procedurally drawn identity data set for the quick start and tests (no files).

Each identity has its own appearance (skin, shirt and trouser colours, a stripe pattern, a bag);
each image its own pose (shift, scale), lighting, background and noise. Everything is drawn from
seeded generators on demand, so the same seed gives the same pixels on every machine.
"""

from __future__ import annotations

import numpy as np

from promptsg.datasets.base import ReIDDataset
from promptsg.errors import ConfigError
from promptsg.registry import DATASETS

SPLITS = ('train', 'val', 'test')


def _identity(seed: int, pid: int) -> dict:
    rng = np.random.default_rng([seed, pid, 0])
    return dict(
        skin=rng.uniform(90, 240, 3),
        shirt=rng.uniform(0, 255, 3),
        trousers=rng.uniform(0, 255, 3),
        stripe=rng.uniform(0, 255, 3),
        n_stripes=int(rng.integers(0, 4)),
        bag=bool(rng.integers(0, 2)),
        bag_colour=rng.uniform(0, 255, 3),
        width=rng.uniform(0.35, 0.6),
    )


def draw_person(seed: int, pid: int, index: int, size: tuple[int, int]) -> np.ndarray:
    """Draw image ``index`` of identity ``pid``: an (H, W, 3) uint8 array."""
    h, w = size
    who = _identity(seed, pid)
    rng = np.random.default_rng([seed, pid, index + 1])
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    ys, xs = ys / h, xs / w
    img = np.empty((h, w, 3), np.float32)
    img[:] = rng.uniform(40, 200, 3)  # background
    img += 25 * np.sin(xs[..., None] * rng.uniform(2, 8) + rng.uniform(0, 6))

    scale = rng.uniform(0.85, 1.1)
    cx, top = 0.5 + rng.uniform(-0.1, 0.1), 0.08 + rng.uniform(-0.04, 0.04)
    half = who['width'] * scale / 2
    head_r, torso_h, legs_h = 0.08 * scale, 0.38 * scale, 0.4 * scale
    head_cy = top + head_r
    torso_top, legs_top = head_cy + head_r, head_cy + head_r + torso_h
    head = ((xs - cx) * w / h) ** 2 + (ys - head_cy) ** 2 < head_r**2
    torso = (abs(xs - cx) < half) & (ys >= torso_top) & (ys < legs_top)
    legs = (abs(xs - cx) < half * 0.8) & (ys >= legs_top) & (ys < legs_top + legs_h)
    legs &= abs(xs - cx) > half * 0.08  # a gap between the legs
    img[head] = who['skin']
    img[torso] = who['shirt']
    if who['n_stripes']:
        band = np.floor((ys - torso_top) / torso_h * (2 * who['n_stripes'] + 1)) % 2 == 1
        img[torso & band] = who['stripe']
    img[legs] = who['trousers']
    if who['bag']:
        side = 1 if index % 2 else -1
        bag = (abs(xs - (cx + side * (half + 0.06))) < 0.07) & (abs(ys - legs_top) < 0.09)
        img[bag] = who['bag_colour']

    img *= rng.uniform(0.75, 1.25)  # lighting
    img += rng.normal(0, 12, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


@DATASETS.register_module()
class SyntheticReID(ReIDDataset):
    """Synthetic identities drawn on demand.

    Training ids are ``0..num_train_ids-1``, test ids follow them (open set). ``split='train'``
    holds images ``0..images_per_id-1`` of every training id; ``'val'`` uses training ids only: a
    held-out image per id is the query, that id's training images the gallery; ``'test'`` holds the
    test ids, one query per id (camera 0) and the rest as gallery. Image ``i`` is taken by camera
    ``i % num_cameras``.
    """

    splits = SPLITS

    def __init__(
        self,
        split: str = 'train',
        num_train_ids: int = 32,
        num_test_ids: int = 16,
        images_per_id: int = 8,
        img_size: tuple[int, int] = (128, 64),
        num_cameras: int = 2,
        seed: int = 0,
        **kwargs,
    ) -> None:
        if images_per_id < 2 or num_cameras < 1:
            raise ConfigError('SyntheticReID needs images_per_id >= 2 and num_cameras >= 1')
        self.num_train_ids, self.num_test_ids = num_train_ids, num_test_ids
        self.images_per_id, self.num_cameras = images_per_id, num_cameras
        self.img_size, self.seed = tuple(img_size), seed
        self._drawn: dict[int, np.ndarray] = {}  # images are drawn once, on first use
        super().__init__(split=split, **kwargs)

    def load_samples(self) -> list[dict]:
        n, samples = self.images_per_id, []

        def add(pid: int, index: int, is_query: bool) -> None:
            samples.append(
                dict(
                    pid=pid,
                    pid_raw=pid,
                    camid=index % self.num_cameras,
                    draw_index=index,
                    is_query=is_query,
                )
            )

        if self.split == 'test':
            for pid in range(self.num_train_ids, self.num_train_ids + self.num_test_ids):
                for i in range(n):
                    add(pid, i, is_query=i == 0)
        else:
            for pid in range(self.num_train_ids):
                if self.split == 'val':
                    add(pid, n, is_query=True)
                for i in range(n):
                    add(pid, i, is_query=False)
        return samples

    def get_data_info(self, idx: int) -> dict:
        info = super().get_data_info(idx)
        if idx not in self._drawn:
            self._drawn[idx] = draw_person(
                self.seed, info['pid_raw'], info['draw_index'], self.img_size
            )
        info['img'] = self._drawn[idx]
        return info
