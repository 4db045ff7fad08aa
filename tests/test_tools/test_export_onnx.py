"""tools/export_onnx.py: the image → embedding path as ONNX, checked against torch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from mmengine.config import Config
from PIL import Image

from promptsg.apis import ReIDInferencer, compare_onnx, export_onnx
from promptsg.datasets.synthetic import draw_person
from promptsg.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
TOOL = ROOT / 'tools' / 'export_onnx.py'
TINY_CONFIG = ROOT / 'tests' / 'test_apis' / 'tiny_promptsg.py'
ATOL = 1e-4


@pytest.fixture(scope='module')
def exported(checkpoint, tmp_path_factory) -> tuple[Path, str]:
    """The tool's ONNX file of the tiny PromptSG, and what it printed."""
    out = tmp_path_factory.mktemp('onnx') / 'tiny.onnx'
    proc = subprocess.run(
        [sys.executable, str(TOOL), str(TINY_CONFIG), str(checkpoint), '--out', str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    return out, proc.stdout


def _pipeline_images(inferencer: ReIDInferencer, paths: list[Path]) -> np.ndarray:
    """The test pipeline's resized uint8 images (B, 3, H, W) as float32 0-255."""
    batch = []
    for path in paths:
        results = {'img_path': str(path), 'pid': -1}
        for transform in inferencer.pipeline:
            results = transform(results)
        batch.append(results['inputs'])
    return torch.stack(batch).float().numpy()


def _onnx_vs_inferencer(onnx_path: Path, checkpoint: Path, paths: list[Path]) -> float:
    inferencer = ReIDInferencer(TINY_CONFIG, checkpoint)  # fixed prompt
    expected = inferencer(paths, progress=False)
    session = ort.InferenceSession(str(onnx_path), providers=['CPUExecutionProvider'])
    images = _pipeline_images(inferencer, paths)
    diffs = []
    for batch in (images[:1], images):  # the batch axis is dynamic
        (got,) = session.run(['embeddings'], {'images': batch})
        assert got.shape == (len(batch), 64)
        diffs.append(np.abs(got - expected[: len(batch)]).max())
    return float(max(diffs))


def test_onnx_embeddings_equal_the_inferencer(exported, checkpoint, tmp_path):
    path, stdout = exported
    assert 'onnxruntime matches torch' in stdout
    paths = []
    for pid in range(5):
        paths.append(tmp_path / f'{pid}.png')
        Image.fromarray(draw_person(9, pid, 0, (100, 40))).save(paths[-1])
    assert _onnx_vs_inferencer(path, checkpoint, paths) < ATOL
    model = onnx.load(str(path))
    onnx.checker.check_model(model)
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta == {
        'input_size': '64,32',
        'input_range': '0-255 RGB',
        'prompt': 'fixed',
        'aspect': '',
        'sie_cameras': '0',
    }
    assert [i.name for i in model.graph.input] == ['images']


def test_baseline_with_neck_and_flip_exports(tmp_path):
    cfg = Config.fromfile(str(TINY_CONFIG))
    cfg.model = dict(
        type='ReIDBaseline',
        num_classes=4,
        backbone=dict(cfg.model.backbone, with_text=False),
        neck=dict(type='BNNeck'),
        losses=dict(triplet=dict(type='TripletLoss')),
        test_cfg=dict(neck_feat='after', flip=True),
    )
    torch.manual_seed(0)
    model = ReIDInferencer(cfg).model
    path = export_onnx(model, tmp_path / 'baseline.onnx')
    meta = {p.key: p.value for p in onnx.load(path).metadata_props}
    assert meta['prompt'] == 'none'
    assert compare_onnx(model, path, batch_size=4) < ATOL


def test_user_errors(checkpoint, tmp_path, load_tool):
    tool = load_tool('export_onnx')
    with pytest.raises(ConfigError, match=r'\.onnx'):
        tool.main([str(TINY_CONFIG), str(checkpoint), '--out', str(tmp_path / 'model.pt')])
    assert not (tmp_path / 'model.pt').exists()


def test_cuhk03_mini_images(exported, checkpoint, shared_data):
    query = shared_data / 'cuhk03_mini' / 'query'
    if not query.is_dir():
        pytest.skip('cuhk03_mini is absent')
    paths = sorted(query.glob('*.jpg'))[:6]
    assert _onnx_vs_inferencer(exported[0], checkpoint, paths) < ATOL
