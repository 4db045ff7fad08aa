"""ONNX export of the image → embedding path: normalisation, backbone, (fixed prompt, MIM), neck.

The graph takes ``images`` (B, 3, H, W) float32 RGB in 0-255, already resized to the model's
input size, and returns ``embeddings`` (B, D) L2-normalised — the features ``ReIDInferencer``
gives with ``prompt='fixed'``. A model with SIE (a camera embedding, ``model.sie_cameras > 0``)
takes a second input, ``camids`` (B,) int64 in ``0..sie_cameras-1``. A PromptSG model's fixed-prompt text feature is computed once and
stored in the graph as a constant; the composed prompt (s* per image) is not exported.
"""

from __future__ import annotations

import os
import warnings

import numpy as np
import torch
from torch import Tensor, nn

from promptsg.errors import ConfigError
from promptsg.optional import require

#: Opset of the legacy TorchScript exporter used here (``onnxscript``-free, works offline).
DEFAULT_OPSET = 17


class _ConstantPrompt(nn.Module):
    """Stands in for ``FixedPrompt`` while tracing: the cached text feature, one row per image.

    ``FixedPrompt`` receives the batch size as a Python int, which a trace would freeze; this one
    takes it from the image batch that :class:`EmbeddingGraph` hands it, so the batch axis of
    the exported graph stays dynamic.
    """

    def __init__(self, text_feat: Tensor) -> None:
        super().__init__()
        self.register_buffer('text_feat', text_feat.detach().clone())
        self.images: Tensor | None = None

    def forward(self, batch_size: int, text_encoder: nn.Module, aspects=None) -> Tensor:
        rows = self.images.shape[0] if self.images is not None else batch_size
        return self.text_feat.expand(rows, -1)


class EmbeddingGraph(nn.Module):
    """``images`` (B, 3, H, W) float 0-255 (and, with SIE, ``camids`` (B,) int64) →
    L2-normalised embeddings (B, D), for export.

    Wraps a built model in eval mode: CLIP mean/std from its data preprocessor, then
    ``model.embed``. For PromptSG the fixed prompt (with ``aspect``) is encoded once here.
    """

    def __init__(self, model: nn.Module, aspect: str = '') -> None:
        super().__init__()
        self.model = model.eval()
        self.register_buffer('mean', model.data_preprocessor.mean.detach().clone())
        self.register_buffer('std', model.data_preprocessor.std.detach().clone())
        self.prompt: _ConstantPrompt | None = None
        if 'prompt' in model.test_cfg:
            with torch.no_grad():
                text = model.fixed_prompt(1, model.backbone.text_encoder, [aspect])[0]
            self.prompt = _ConstantPrompt(text)

    def forward(self, images: Tensor, camids: Tensor | None = None) -> Tensor:
        x = (images - self.mean) / self.std
        samples = {'camid': camids} if camids is not None else None
        if self.prompt is None:
            return self.model.embed(x, samples)
        model, mode = self.model, self.model.test_cfg['prompt']
        original, model.fixed_prompt = model.fixed_prompt, self.prompt
        model.test_cfg['prompt'], self.prompt.images = 'fixed', x
        try:
            return model.embed(x, samples)
        finally:
            model.fixed_prompt, self.prompt.images = original, None
            model.test_cfg['prompt'] = mode


def input_size(model: nn.Module) -> tuple[int, int]:
    """(H, W) the model's backbone was built for."""
    size = getattr(model.backbone, 'img_size', None)
    if size is None:
        raise ConfigError(f'{type(model.backbone).__name__} does not say its input size')
    return tuple(size)


def export_onnx(
    model: nn.Module,
    path: str | os.PathLike,
    aspect: str = '',
    opset: int = DEFAULT_OPSET,
    batch_size: int = 2,
) -> str:
    """Write ``model``'s image → embedding path to ``path`` (.onnx) with a dynamic batch axis.

    Metadata: ``input_size`` ("H,W"), ``input_range`` ("0-255 RGB"), ``prompt``, ``aspect``,
    ``sie_cameras`` (0: no ``camids`` input). Returns the path written.

    Raises:
        MissingDependencyError: onnx is not installed (one line naming the pip install).
    """
    onnx = require('onnx', 'ONNX export')

    graph = EmbeddingGraph(model.cpu(), aspect).eval()
    h, w = input_size(model)
    dummy = torch.rand(batch_size, 3, h, w) * 255
    cameras = getattr(model, 'sie_cameras', 0)
    inputs, names = (dummy,), ['images']
    axes = {'images': {0: 'batch'}, 'embeddings': {0: 'batch'}}
    if cameras:
        inputs, names = (dummy, torch.arange(batch_size) % cameras), ['images', 'camids']
        axes['camids'] = {0: 'batch'}
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fastpath = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)  # its fused kernel has no ONNX symbolic
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter('ignore', torch.jit.TracerWarning)
            torch.onnx.export(
                graph,
                inputs,
                path,
                dynamo=False,
                input_names=names,
                output_names=['embeddings'],
                dynamic_axes=axes,
                opset_version=opset,
            )
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)
    proto = onnx.load(path)
    meta = {
        'input_size': f'{h},{w}',
        'input_range': '0-255 RGB',
        'prompt': 'fixed' if graph.prompt is not None else 'none',
        'aspect': aspect,
        'sie_cameras': str(cameras),
    }
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(proto, path)
    return path


def compare_onnx(
    model: nn.Module,
    path: str | os.PathLike,
    aspect: str = '',
    batch_size: int = 3,
    seed: int = 0,
) -> float:
    """Max |onnxruntime − torch| over the embeddings of ``batch_size`` random images.

    The torch side is the model itself (data preprocessor, then ``embed`` with the fixed
    prompt), not the export wrapper; an SIE model gets random camera ids on both sides.

    Raises:
        MissingDependencyError: onnxruntime is not installed.
    """
    ort = require('onnxruntime', 'checking the ONNX export (skip it with --no-verify)')

    h, w = input_size(model)
    gen = torch.Generator().manual_seed(seed)
    images = torch.rand(batch_size, 3, h, w, generator=gen) * 255
    samples: dict = {'aspect': [aspect] * batch_size}
    feed = {'images': images.numpy()}
    cameras = getattr(model, 'sie_cameras', 0)
    if cameras:
        samples['camid'] = torch.randint(0, cameras, (batch_size,), generator=gen)
        feed['camids'] = samples['camid'].numpy()
    model = model.cpu().eval()
    mode = model.test_cfg.get('prompt')
    if mode is not None:
        model.test_cfg['prompt'] = 'fixed'
    try:
        with torch.no_grad():
            data = model.data_preprocessor({'inputs': images, 'data_samples': samples})
            expected = model.embed(data['inputs'], data['data_samples']).numpy()
    finally:
        if mode is not None:
            model.test_cfg['prompt'] = mode
    session = ort.InferenceSession(os.fspath(path), providers=['CPUExecutionProvider'])
    (got,) = session.run(['embeddings'], feed)
    return float(np.abs(got - expected).max())
