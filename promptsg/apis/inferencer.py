"""Embed images with a trained model: paths, folders, PIL images or arrays → (N, D) features."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from mmengine.config import Config
from mmengine.dataset import default_collate
from mmengine.logging import print_log
from mmengine.registry import DefaultScope
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from promptsg.apis.images import collect_images
from promptsg.engine.checkpoint import (
    checkpoint_model_cfg,
    load_checkpoint_file,
    resolve_checkpoint,
)
from promptsg.engine.config import fill_num_classes, load_config
from promptsg.errors import CheckpointError, ConfigError, DataError, PromptSGError
from promptsg.registry import MODELS, TRANSFORMS

#: Prompt modes of a PromptSG model at inference (see ``PromptSG.test_cfg``).
PROMPTS = ('fixed', 'composed')


def build_device(device: str | torch.device) -> torch.device:
    """``'cpu'``, ``'cuda'``, ``'cuda:1'`` → a device that exists here, else a ``ConfigError``."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise ConfigError(f"device '{device}' is not a torch device (e.g. 'cpu', 'cuda')") from e
    if dev.type == 'cuda' and not torch.cuda.is_available():
        raise ConfigError(f"device '{device}': CUDA is not available here; use 'cpu'")
    if dev.type == 'cuda' and (dev.index or 0) >= torch.cuda.device_count():
        raise ConfigError(f"device '{device}': only {torch.cuda.device_count()} GPU(s) visible")
    return dev


def load_model_weights(
    model: torch.nn.Module, checkpoint: str | Mapping, name: str | None = None
) -> dict:
    """Load a promptsg/mmengine checkpoint (a file, or one already loaded and called ``name``
    in messages) into ``model`` (strictly); return its ``meta``.

    Raises:
        CheckpointError: unreadable file, or keys/shapes that do not match the model.
    """
    if name is None:
        name = checkpoint if isinstance(checkpoint, str) else '(loaded)'
    ckpt = load_checkpoint_file(checkpoint, 'cpu') if isinstance(checkpoint, str) else checkpoint
    if not isinstance(ckpt, Mapping):
        raise CheckpointError(f'checkpoint {name} holds a {type(ckpt).__name__}, not a dict')
    state = ckpt.get('state_dict', ckpt)
    state = {k.removeprefix('module.'): v for k, v in state.items()}
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as e:
        detail = ' '.join(str(e).split())
        raise CheckpointError(f'checkpoint {name} does not fit the model: {detail[:300]}') from None
    if missing or unexpected:
        raise CheckpointError(
            f'checkpoint {name} does not fit the model: {len(missing)} missing key(s) '
            f'{missing[:3]}, {len(unexpected)} unexpected key(s) {unexpected[:3]} '
            '(is it from this config?)'
        )
    return ckpt.get('meta', {})


def checkpoint_num_classes(checkpoint: Mapping) -> int | None:
    """The identity count a checkpoint was trained with, None when it does not say.

    Read from its saved config (``meta['cfg']``, which ``tools/train.py`` fills from the
    training set), else from dim 0 of the head's classifier weight ``(num_classes, C)``, else
    of a center loss's centres ``(num_classes, D)``.
    """
    num_classes = (checkpoint_model_cfg(checkpoint) or {}).get('num_classes')
    if isinstance(num_classes, int) and num_classes >= 1:
        return num_classes
    state = checkpoint.get('state_dict', checkpoint)
    state = {k.removeprefix('module.'): v for k, v in state.items()}
    shapes = [tuple(v.shape) for k, v in state.items() if k.startswith('head.') and v.ndim == 2]
    shapes += [tuple(v.shape) for k, v in state.items() if k.endswith('.centers') and v.ndim == 2]
    return int(shapes[0][0]) if shapes else None


def complete_num_classes(cfg: Config, checkpoint: Mapping | None = None) -> str | None:
    """Fill ``model.num_classes`` when the config leaves it ``None`` (every shipped config does).

    Taken from the checkpoint (:func:`checkpoint_num_classes`), else from the configured
    training set; when neither says, a 1-class head is built: the classifier takes no part in
    the embeddings, so they are unaffected. Returns where the count came from (None when the
    config already had one).
    """
    model = cfg.model
    if model.get('num_classes', 0) is not None:
        return None
    num_classes = checkpoint_num_classes(checkpoint) if checkpoint is not None else None
    source, why = 'the checkpoint', 'no training set is configured'
    if num_classes is None and cfg.get('train_dataloader'):
        try:
            num_classes, source = fill_num_classes(cfg), 'the training set'
        except PromptSGError as e:  # e.g. the data set is not on this machine
            why = f'the training set cannot be read ({e})'
    if num_classes is None:
        num_classes, source = 1, 'nowhere: a 1-class head, which the embeddings do not use'
        given = 'the checkpoint does not say it' if checkpoint is not None else 'no checkpoint'
        print_log(
            f'model.num_classes is None, {given} and {why}: building a 1-class head '
            '(the embeddings do not use it)',
            logger='current',
        )
    model.num_classes = num_classes
    return source


class _ImageSet(Dataset):
    """Images as test-pipeline samples: ``{'inputs': (3, H, W) uint8, 'data_samples': {...}}``."""

    def __init__(self, images: list, pipeline: list, aspect: str, camids: list[int]) -> None:
        self.images, self.pipeline, self.aspect, self.camids = images, pipeline, aspect, camids

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, idx: int) -> dict:
        image = self.images[idx]
        results = dict(pid=-1, camid=self.camids[idx], sample_idx=idx, aspect=self.aspect)
        if isinstance(image, str):
            results['img_path'] = image
        else:
            results['img'] = image
        for transform in self.pipeline:
            results = transform(results)
        return results


def _check_array(image: np.ndarray | torch.Tensor, where: str) -> np.ndarray | torch.Tensor:
    """An (H, W, 3) / (H, W) uint8 array or a (3, H, W) uint8 tensor, else a ``DataError``."""
    if isinstance(image, torch.Tensor):
        if image.dtype != torch.uint8 or image.dim() != 3 or image.shape[0] != 3:
            raise DataError(
                f'{where}: a tensor image must be (3, H, W) uint8, got {tuple(image.shape)} '
                f'{image.dtype}'
            )
        return image
    if image.dtype != np.uint8:
        raise DataError(f'{where}: an array image must be uint8 (0-255), got {image.dtype}')
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=-1)
    if not image.flags.writeable:  # e.g. np.asarray(PIL image); torch wants writable memory
        image = image.copy()
    if image.ndim != 3 or image.shape[-1] != 3:
        raise DataError(f'{where}: an array image must be (H, W, 3) or (H, W), got {image.shape}')
    return image


def as_image_list(images) -> list:
    """Flatten the accepted inputs into a list of paths (str), PIL images and arrays.

    Accepted: a path (image, folder, or ``.txt``/``.csv`` list), a PIL image, an (H, W, 3)
    array, an (N, H, W, 3) array, a (3, H, W) uint8 tensor, or a list of these.
    """
    return image_inputs(images)[0]


def image_inputs(images) -> tuple[list, list[int]]:
    """:func:`as_image_list` and each image's camera id: from a Market-1501 file name or a
    CSV list's ``camid`` column (see :mod:`promptsg.apis.images`), else -1 (unknown)."""
    if isinstance(images, (str, os.PathLike)):
        records = collect_images(images)
        return [r.path for r in records], [r.camid for r in records]
    if isinstance(images, np.ndarray) and images.ndim == 4:
        flat = [_check_array(a, f'images[{i}]') for i, a in enumerate(images)]
        return flat, [-1] * len(flat)
    if isinstance(images, (Image.Image, np.ndarray, torch.Tensor)):
        images = [images]
    if not isinstance(images, Sequence) or not images:
        raise DataError(
            'images must be a path, folder, list file, PIL image, array, or a non-empty list '
            f'of these; got {type(images).__name__}'
        )
    flat: list = []
    camids: list[int] = []
    for i, image in enumerate(images):
        if isinstance(image, (str, os.PathLike)):
            records = collect_images(image)
            flat += [r.path for r in records]
            camids += [r.camid for r in records]
            continue
        if isinstance(image, Image.Image):
            flat.append(image)
        elif isinstance(image, (np.ndarray, torch.Tensor)):
            flat.append(_check_array(image, f'images[{i}]'))
        else:
            raise DataError(
                f'images[{i}] is a {type(image).__name__}; expected a path, PIL image or array'
            )
        camids.append(-1)
    return flat, camids


def merge_camids(known: list[int], camids: int | Sequence[int] | None) -> list[int]:
    """Camera ids of images whose ``known`` ids (-1: unknown) meet a ``camids`` argument: None
    keeps them, an int fills the unknown ones, a sequence replaces them all."""
    if camids is None:
        return list(known)
    if isinstance(camids, int):
        return [c if c >= 0 else camids for c in known]
    camids = [int(c) for c in camids]
    if len(camids) != len(known):
        raise DataError(f'{len(camids)} camids for {len(known)} images')
    return camids


def _name(image, i: int) -> str:
    return image if isinstance(image, str) else f'images[{i}]'


def check_camids(images: list, camids: list[int], cameras: int) -> None:
    """Each image has a camera id in ``0..cameras-1``, which a model with SIE adds.

    Raises:
        DataError: an image's camera is unknown (-1) or out of range (one line naming it and
            how to give cameras).
    """
    unknown = [i for i, c in enumerate(camids) if c < 0]
    if unknown:
        raise DataError(
            f'{len(unknown)} of {len(images)} images have no camera id (first: '
            f'{_name(images[unknown[0]], unknown[0])}) and this model adds a camera embedding '
            f'(SIE, {cameras} cameras): name the images Market-1501 style (0001_c1s1_...), '
            'list them in a CSV with a camid column, or give the camera of the rest (--camid N; '
            'camids=N in Python)'
        )
    bad = [i for i, c in enumerate(camids) if c >= cameras]
    if bad:
        raise DataError(
            f'camera id {camids[bad[0]]} of {_name(images[bad[0]], bad[0])} is out of range '
            f'for this model, trained on {cameras} cameras (0..{cameras - 1}; Market-style '
            'names count cameras from c1 = 0)'
        )


class ReIDInferencer:
    """Retrieval embeddings of images from a config and a checkpoint.

    Images go through the config's test pipeline (``test_dataloader.dataset.pipeline``: load,
    resize, pack) and the model's data preprocessor, exactly as in ``tools/test.py``; the model
    runs in eval mode and returns L2-normalised features.

    Args:
        config: a config file, an mmengine ``Config`` or a dict with ``model`` and a test pipeline.
        checkpoint: a checkpoint file (``tools/train.py``'s ``best_*.pth``) or a training work
            dir (its best checkpoint, as ``tools/test.py`` picks it); ``None`` keeps the freshly
            built weights (for tests and exports of untrained models). A config that leaves
            ``model.num_classes`` None takes it from the checkpoint (see
            :func:`complete_num_classes`).
        device: ``'cpu'``, ``'cuda'`` or ``'cuda:N'``.
        prompt: PromptSG's inference prompt: ``'fixed'`` (default, the cached "A photo of a
            person" feature, faster) or ``'composed'`` (s* per image, most accurate).
        aspect: words for a template's ``{aspect}`` slot (e.g. ``'dorsal right'``).
        batch_size: images per forward pass.
        num_workers: data-loading worker processes (0 = in this process).
        cfg_options: ``--cfg-options``-style overrides applied to a config file.

    ``inferencer(images)`` returns a float32 array (N, D) of L2-normalised embeddings.
    """

    def __init__(
        self,
        config: str | os.PathLike | Config | dict,
        checkpoint: str | os.PathLike | None = None,
        device: str | torch.device = 'cpu',
        prompt: str = 'fixed',
        aspect: str = '',
        batch_size: int = 32,
        num_workers: int = 0,
        cfg_options: dict | None = None,
    ) -> None:
        if isinstance(config, (str, os.PathLike)):
            config = load_config(os.fspath(config), cfg_options)
        elif isinstance(config, dict) and not isinstance(config, Config):
            config = Config(config)
        if 'model' not in config:
            raise ConfigError('the config has no model')
        if prompt not in PROMPTS:
            raise ConfigError(f"prompt '{prompt}' is not one of {list(PROMPTS)}")
        if batch_size < 1:
            raise ConfigError(f'batch_size must be >= 1, got {batch_size}')
        self.checkpoint = resolve_checkpoint(checkpoint) if checkpoint is not None else None
        ckpt = load_checkpoint_file(self.checkpoint, 'cpu') if self.checkpoint else None
        if ckpt is not None and not isinstance(ckpt, Mapping):
            raise CheckpointError(
                f'checkpoint {self.checkpoint} holds a {type(ckpt).__name__}, not a dict'
            )
        self.num_classes_from = complete_num_classes(config, ckpt)
        self.cfg = config
        self.device = build_device(device)
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.aspect = aspect
        with DefaultScope.overwrite_default_scope(config.get('default_scope', 'promptsg')):
            self.model = MODELS.build(config.model)
            self.pipeline = [TRANSFORMS.build(t) for t in self._test_pipeline(config)]
        self.meta = (
            load_model_weights(self.model, ckpt, self.checkpoint) if ckpt is not None else {}
        )
        if 'prompt' in self.model.test_cfg:
            self.model.test_cfg['prompt'] = prompt
        elif prompt != 'fixed':
            raise ConfigError(f"prompt '{prompt}': {type(self.model).__name__} has no prompt")
        self.prompt = prompt
        self.model.to(self.device).eval()

    @staticmethod
    def _test_pipeline(cfg: Config) -> list:
        for key in ('test_dataloader', 'val_dataloader'):
            pipeline = (cfg.get(key) or {}).get('dataset', {}).get('pipeline')
            if pipeline:
                return list(pipeline)
        raise ConfigError(
            'the config has no test pipeline (test_dataloader.dataset.pipeline): inference needs '
            'one, e.g. [LoadImage, Resize, PackReIDInputs]'
        )

    @torch.no_grad()
    def embed_batch(self, batch: dict) -> torch.Tensor:
        """A collated batch ``{'inputs': (B, 3, H, W) uint8, 'data_samples'}`` → (B, D) on CPU."""
        data = self.model.data_preprocessor(batch, False)
        return self.model.embed(data['inputs'], data['data_samples']).float().cpu()

    def __call__(
        self,
        images,
        batch_size: int | None = None,
        progress: bool = True,
        camids: int | Sequence[int] | None = None,
    ) -> np.ndarray:
        """Embed ``images`` (see :func:`as_image_list`): a float32 array (N, D), rows L2-normalised,
        in input order (folders sorted).

        ``camids`` matter only to a model with SIE (a camera embedding, ``model.sie_cameras``):
        by default they come from Market-1501 file names and CSV lists; an int is the camera of
        every image whose camera is not known that way; a sequence gives one per image.

        Raises:
            DataError: the model has SIE and an image's camera is unknown or out of range.
        """
        images, known = image_inputs(images)
        camids = merge_camids(known, camids)
        cameras = getattr(self.model, 'sie_cameras', 0)
        if cameras:
            check_camids(images, camids, cameras)
        loader = DataLoader(
            _ImageSet(images, self.pipeline, self.aspect, camids),
            batch_size=batch_size or self.batch_size,
            num_workers=self.num_workers,
            collate_fn=default_collate,
        )
        feats = []
        with tqdm(total=len(images), desc='embedding', unit='img', disable=not progress) as bar:
            for batch in loader:
                feats.append(self.embed_batch(batch))
                bar.update(len(feats[-1]))
        return torch.cat(feats).numpy().astype(np.float32, copy=False)

    # Querying a gallery index (promptsg.retrieval); kept apart from construction above.
    @property
    def fingerprint(self) -> str:
        """Fingerprint of the weights, test pipeline, prompt and aspect (see GalleryIndex)."""
        from promptsg.retrieval import model_fingerprint

        key = (self.prompt, self.aspect)
        if getattr(self, '_fingerprint_key', None) != key:
            pipeline = [dict(t) for t in self._test_pipeline(self.cfg)]
            self._fingerprint = model_fingerprint(self.model, pipeline, *key)
            self._fingerprint_key = key
        return self._fingerprint

    def search(
        self,
        images,
        index,
        topk: int = 5,
        camera_filter: bool = True,
        exclude_self: bool = True,
        progress: bool = True,
        camids: int | Sequence[int] | None = None,
    ):
        """Embed ``images`` and search a :class:`~promptsg.retrieval.GalleryIndex` (or its file).

        Paths, folders and lists give the queries' pids and cameras (see
        :mod:`promptsg.apis.images`) for the camera rule; arrays and PIL images have none.
        ``camids`` are as in ``__call__``: the cameras an SIE model embeds (the camera rule uses
        only the known ones).
        Returns a :class:`~promptsg.apis.retrieval.SearchResult` over the index's entries; an
        index built by another model is a DataError.
        """
        from promptsg.apis.images import ImageRecord
        from promptsg.apis.retrieval import search_index
        from promptsg.retrieval import GalleryIndex

        if not isinstance(index, GalleryIndex):
            index = GalleryIndex.load(index)
        inputs = [images] if isinstance(images, (str, os.PathLike)) else images
        if isinstance(inputs, list) and all(isinstance(i, (str, os.PathLike)) for i in inputs):
            query = [r for item in inputs for r in collect_images(item)]
            images = [r.path for r in query]
            camids = merge_camids([r.camid for r in query], camids)
        else:
            query = [ImageRecord(f'<image {i}>') for i in range(len(as_image_list(images)))]
            exclude_self = False
        feats = self(images, progress=progress, camids=camids)
        return search_index(
            query, feats, index, topk, exclude_self, camera_filter, self.fingerprint
        )
