"""Inference with a model whose ViT adds a camera embedding (SIE): each image's camera comes from
its Market-1501 name, a CSV list's camid column or ``camids=``, and reaches the model; an image
without a camera is a one-line error, not a silently camera-less feature."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from promptsg.apis import ReIDInferencer
from promptsg.datasets.synthetic import draw_person
from promptsg.errors import DataError

ROOT = Path(__file__).resolve().parents[2]
SIE_CONFIG = ROOT / 'configs/clip_reid/clip-reid_vit-b16-sie-olp_1xb64_market1501.py'
TINY = {
    'model.backbone.arch': 'tiny-vit',
    'model.backbone.pretrained': None,
    'model.num_classes': 4,
}


@pytest.fixture(scope='module')
def sie_inferencer() -> ReIDInferencer:
    torch.manual_seed(0)
    inferencer = ReIDInferencer(SIE_CONFIG, cfg_options=TINY)
    with torch.no_grad():  # a visible camera embedding (trained ones are not ~0)
        inferencer.model.backbone.sie_embed.normal_(0, 1.0)
    return inferencer


@pytest.fixture(scope='module')
def same_person_two_cameras(tmp_path_factory) -> Path:
    """One image saved as camera 1, camera 2 and under a name that gives no camera."""
    root = tmp_path_factory.mktemp('sie_images')
    Image.fromarray(draw_person(3, 1, 0, (128, 64))).save(root / '0001_c1s1_000001_00.png')
    shutil.copy(root / '0001_c1s1_000001_00.png', root / '0001_c2s1_000001_00.png')
    shutil.copy(root / '0001_c1s1_000001_00.png', root / 'nocamera.png')
    return root


def test_the_camera_in_the_file_name_reaches_the_model(sie_inferencer, same_person_two_cameras):
    c1, c2 = (str(same_person_two_cameras / f'0001_c{c}s1_000001_00.png') for c in (1, 2))
    feats = sie_inferencer([c1, c2], progress=False)
    assert not np.allclose(feats[0], feats[1], atol=1e-4)  # same pixels, other camera
    np.testing.assert_allclose(feats, sie_inferencer([c1, c1], progress=False, camids=[0, 1]))


def test_an_image_without_a_camera_is_a_one_line_error(sie_inferencer, same_person_two_cameras):
    plain = str(same_person_two_cameras / 'nocamera.png')
    with pytest.raises(DataError) as info:
        sie_inferencer(plain, progress=False)
    message = str(info.value)
    assert '\n' not in message
    assert '1 of 1 images have no camera id' in message and 'nocamera.png' in message
    assert 'SIE, 6 cameras' in message and '--camid N' in message
    with pytest.raises(DataError, match=r'images\[0\]'):  # an array has no camera either
        sie_inferencer(np.zeros((64, 32, 3), np.uint8), progress=False)


def test_camids_fill_the_unknown_cameras(sie_inferencer, same_person_two_cameras):
    c2 = str(same_person_two_cameras / '0001_c2s1_000001_00.png')
    plain = str(same_person_two_cameras / 'nocamera.png')
    filled = sie_inferencer([plain, c2], progress=False, camids=1)  # c2 keeps its camera (1)
    np.testing.assert_allclose(filled[0], filled[1], atol=1e-6)
    with pytest.raises(DataError, match='2 camids for 1 images'):
        sie_inferencer(plain, progress=False, camids=[0, 1])


def test_a_csv_camid_column_gives_the_camera(sie_inferencer, same_person_two_cameras, tmp_path):
    plain = same_person_two_cameras / 'nocamera.png'
    listing = tmp_path / 'list.csv'
    listing.write_text(f'path,camid\n{plain},1\n')
    expected = sie_inferencer(str(plain), progress=False, camids=1)
    np.testing.assert_allclose(sie_inferencer(str(listing), progress=False), expected)


def test_a_camera_the_model_was_not_trained_on(sie_inferencer, tmp_path):
    Image.fromarray(draw_person(3, 1, 0, (128, 64))).save(tmp_path / '0001_c7s1_000001_00.png')
    with pytest.raises(DataError, match=r'camera id 6 of .*0001_c7s1.* 6 cameras \(0\.\.5'):
        sie_inferencer(str(tmp_path), progress=False)


def test_models_without_sie_ignore_unknown_cameras(tiny_config, same_person_two_cameras):
    inferencer = ReIDInferencer(tiny_config)
    assert inferencer.model.sie_cameras == 0
    plain = str(same_person_two_cameras / 'nocamera.png')
    c1 = str(same_person_two_cameras / '0001_c1s1_000001_00.png')
    feats = inferencer([plain, c1], progress=False)
    np.testing.assert_allclose(feats[0], feats[1], atol=1e-6)  # the camera changes nothing


def test_onnx_export_takes_the_camera_ids(sie_inferencer, tmp_path):
    onnx = pytest.importorskip('onnx')
    ort = pytest.importorskip('onnxruntime')
    from promptsg.apis.onnx_export import compare_onnx, export_onnx

    model = sie_inferencer.model
    path = export_onnx(model, tmp_path / 'sie.onnx')
    meta = {p.key: p.value for p in onnx.load(path).metadata_props}
    assert meta['sie_cameras'] == '6'
    session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    assert [i.name for i in session.get_inputs()] == ['images', 'camids']
    images = np.random.default_rng(0).uniform(0, 255, (1, 3, 256, 128)).astype(np.float32)
    images = np.repeat(images, 3, axis=0)
    (got,) = session.run(['embeddings'], {'images': images, 'camids': np.array([0, 5, 0])})
    assert np.allclose(got[0], got[2]) and not np.allclose(got[0], got[1], atol=1e-4)
    assert compare_onnx(model, path) < 1e-4
    sie_inferencer.model.to('cpu').eval()
