"""The inference tools from a shipped config (``model.num_classes=None``) and a work dir: what a
user runs after ``tools/train.py configs/vit_b16/v6.py``."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.registry import DefaultScope

from promptsg.apis import ReIDInferencer
from promptsg.engine.checkpoint import best_checkpoint
from promptsg.engine.cli import run_cli
from promptsg.engine.config import load_config
from promptsg.registry import MODELS

ROOT = Path(__file__).resolve().parents[2]
TINY = {'vit_b16': 'tiny-vit', 'rn50': 'tiny-rn'}
V6 = {b: str(ROOT / 'configs' / b / 'v6.py') for b in ('vit_b16', 'rn50')}
HANDS = ROOT.parent / 'shared' / 'data' / '11k_hands_mini' / 'Hands'


def image_list(path: Path, n: int, start: int = 0) -> Path:
    """A .txt list of ``n`` 11k Hands images."""
    names = sorted(p.name for p in HANDS.glob('*.jpg'))[start : start + n]
    path.write_text(''.join(f'{HANDS / name}\n' for name in names))
    return path


def options(backbone: str = 'vit_b16') -> dict:
    """The tiny CLIP as ``cfg_options`` of the Python API."""
    return {'model.backbone.arch': TINY[backbone], 'model.backbone.pretrained': None}


@pytest.mark.slow
def test_extract_takes_the_work_dirs_best_checkpoint(
    hands_v6_run, load_tool, tiny_backbone, tmp_path, capsys
):
    images = image_list(tmp_path / 'images.txt', 12)
    out = tmp_path / 'feats.npy'
    argv = [V6['vit_b16'], str(hands_v6_run), str(images), '--out', str(out), '--no-progress']
    feats = load_tool('extract').main([*argv, '--cfg-options', *tiny_backbone()])
    err = capsys.readouterr().err
    best = best_checkpoint(str(hands_v6_run))
    assert f'checkpoint: {best}' in err
    assert 'model.num_classes = ' in err and '(from the checkpoint)' in err
    expected = ReIDInferencer(V6['vit_b16'], best, cfg_options=options())(
        str(images), progress=False
    )
    np.testing.assert_allclose(feats, expected, atol=1e-6)
    np.testing.assert_array_equal(np.load(out), feats)


@pytest.mark.slow
def test_search_with_the_work_dir(hands_v6_run, load_tool, tiny_backbone, tmp_path):
    query = image_list(tmp_path / 'query.txt', 3)
    gallery = image_list(tmp_path / 'gallery.txt', 12, start=3)
    out = tmp_path / 'results.csv'
    argv = [V6['vit_b16'], str(hands_v6_run), '--query', str(query), '--gallery', str(gallery)]
    argv += ['--topk', '2', '--out', str(out), '--no-progress']
    run_cli(lambda: load_tool('search').main([*argv, '--cfg-options', *tiny_backbone()]))
    with open(out) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3 * 2


@pytest.mark.slow
def test_export_onnx_with_the_work_dir(hands_v6_run, load_tool, tiny_backbone, tmp_path, capsys):
    out = tmp_path / 'v6.onnx'
    argv = [V6['vit_b16'], str(hands_v6_run), '--out', str(out)]
    diff = load_tool('export_onnx').main([*argv, '--cfg-options', *tiny_backbone()])
    assert out.is_file() and diff < 1e-4
    assert best_checkpoint(str(hands_v6_run)) in capsys.readouterr().out


def test_rn50_tools_from_a_checkpoint_without_its_config(load_tool, tiny_backbone, tmp_path):
    """A checkpoint with weights only: the class count comes from the head's weight shape."""
    cfg = load_config(V6['rn50'], {**options('rn50'), 'model.num_classes': 6})
    with DefaultScope.overwrite_default_scope('promptsg'):
        torch.manual_seed(0)
        state = MODELS.build(cfg.model).state_dict()
    work_dir = tmp_path / 'work'
    work_dir.mkdir()
    torch.save({'state_dict': state}, work_dir / 'best_reid_mAP_epoch_3.pth')
    if not HANDS.is_dir():
        pytest.skip('11k_hands_mini is absent')
    images = image_list(tmp_path / 'images.txt', 4)
    argv = [V6['rn50'], str(work_dir), str(images), '--out', str(tmp_path / 'f.npy')]
    feats = load_tool('extract').main(
        [*argv, '--no-progress', '--cfg-options'] + (tiny_backbone('rn50'))
    )
    assert feats.shape[0] == 4 and np.isfinite(feats).all()
    out = tmp_path / 'rn50.onnx'
    argv = [V6['rn50'], str(work_dir), '--out', str(out), '--cfg-options']
    assert load_tool('export_onnx').main(argv + tiny_backbone('rn50')) < 1e-4


SHIPPED = sorted(
    str(p.relative_to(ROOT / 'configs'))
    for p in (ROOT / 'configs').rglob('*.py')
    if '_base_' not in p.parts
)


@pytest.fixture(scope='module')
def market_named(tmp_path_factory) -> Path:
    """Two identities seen by two cameras, Market-1501 names (which give the cameras)."""
    from PIL import Image

    from promptsg.datasets.synthetic import draw_person

    root = tmp_path_factory.mktemp('market_named')
    for pid in (1, 2):
        for cam in (1, 2):
            image = draw_person(5, pid, cam, (128, 64))
            Image.fromarray(image).save(root / f'{pid:04d}_c{cam}s1_000001_00.jpg')
    return root


def test_the_sweep_covers_every_shipped_config():
    assert len(SHIPPED) >= 60 and 'clip_reid/clip-reid_vit-b16-sie-olp_1xb64_msmt17.py' in SHIPPED


@pytest.mark.slow
@pytest.mark.parametrize('config', SHIPPED)
def test_every_shipped_config_works_with_every_inference_tool(
    config, deep_tiny_archs, market_named, load_tool, tmp_path, capsys
):
    """extract, search, get_flops and export_onnx (checked by onnxruntime) on a random-weight
    checkpoint of the config, its backbone swapped for a tiny CLIP with as many last blocks."""
    pytest.importorskip('onnxruntime')
    path = str(ROOT / 'configs' / config)
    cfg = load_config(path)
    tiny = {'model.backbone.arch': deep_tiny_archs[cfg.model.backbone.type]}
    tiny['model.backbone.pretrained'] = None
    # a shipped config leaves num_classes None (the tools take it from the checkpoint) or fixes it
    classes = {'model.num_classes': 4} if cfg.model.get('num_classes') is None else {}
    torch.manual_seed(0)
    model = ReIDInferencer(path, cfg_options={**tiny, **classes}).model
    checkpoint = tmp_path / 'random.pth'
    torch.save({'state_dict': model.state_dict()}, checkpoint)
    words = [f'{k}={v}' for k, v in tiny.items()]
    run = [path, str(checkpoint)]
    feats = load_tool('extract').main(
        [*run, str(market_named), '--out', str(tmp_path / 'f.npy'), '--no-progress']
        + ['--cfg-options', *words]
    )
    assert feats.shape[0] == 4 and np.isfinite(feats).all()
    result = load_tool('search').main(
        [*run, '--query', str(market_named), '--gallery', str(market_named), '--topk', '2']
        + ['--out', str(tmp_path / 'r.csv'), '--no-progress', '--cfg-options', *words]
    )
    assert len(result.indices) == 4
    flops = load_tool('analysis_tools/get_flops').main(
        [path, '--cfg-options', *words, *[f'{k}={v}' for k, v in classes.items()]]
    )
    assert all(entry['total'] > 0 for entry in flops['flops'].values())
    out = tmp_path / 'model.onnx'
    diff = load_tool('export_onnx').main([*run, '--out', str(out), '--cfg-options', *words])
    assert out.is_file() and diff < 1e-4
    capsys.readouterr()
