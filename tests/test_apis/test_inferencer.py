"""ReIDInferencer: the same embeddings as the evaluation path, from any kind of image input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import default_collate
from mmengine.registry import DefaultScope
from mmengine.runner import load_checkpoint
from PIL import Image

from promptsg.apis import ReIDInferencer
from promptsg.apis.inferencer import checkpoint_num_classes
from promptsg.engine.config import load_config
from promptsg.errors import CheckpointError, ConfigError, DataError
from promptsg.registry import DATASETS, MODELS

TINY_CONFIG = Path(__file__).resolve().parent / 'tiny_promptsg.py'
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope='module')
def inferencer(tiny_checkpoint) -> ReIDInferencer:
    return ReIDInferencer(TINY_CONFIG, tiny_checkpoint, batch_size=16)


@pytest.mark.parametrize('prompt', ['fixed', 'composed'])
def test_embeddings_equal_the_evaluation_path(tiny_checkpoint, prompt):
    """Data set → test pipeline → collate → preprocessor → predict, with mmengine's loader."""
    cfg = Config.fromfile(str(TINY_CONFIG))
    with DefaultScope.overwrite_default_scope('promptsg'):
        dataset = DATASETS.build(cfg.test_dataloader.dataset)
        model = MODELS.build(cfg.model)
    load_checkpoint(model, str(tiny_checkpoint), map_location='cpu', strict=True)
    model.test_cfg['prompt'] = prompt
    model.eval()
    batch = default_collate([dataset[i] for i in range(len(dataset))])
    with torch.no_grad():
        expected = torch.stack([r['feat'] for r in model.test_step(batch)]).numpy()

    inferencer = ReIDInferencer(cfg, tiny_checkpoint, prompt=prompt, batch_size=5)
    assert inferencer.model.test_cfg['prompt'] == prompt
    arrays = [dataset.get_data_info(i)['img'] for i in range(len(dataset))]
    got = inferencer(arrays, progress=False)
    assert got.dtype == np.float32 and got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_fixed_and_composed_prompts_differ(tiny_checkpoint, identity_folders):
    fixed = ReIDInferencer(TINY_CONFIG, tiny_checkpoint)(identity_folders, progress=False)
    composed = ReIDInferencer(TINY_CONFIG, tiny_checkpoint, prompt='composed')(
        identity_folders, progress=False
    )
    assert np.abs(fixed - composed).max() > 1e-3


def test_checkpoint_weights_are_used(tiny_checkpoint, identity_folders, make_checkpoint, tmp_path):
    other = make_checkpoint(tmp_path / 'other.pth', seed=1)
    a = ReIDInferencer(TINY_CONFIG, tiny_checkpoint)(identity_folders, progress=False)
    b = ReIDInferencer(TINY_CONFIG, other)(identity_folders, progress=False)
    assert np.abs(a - b).max() > 1e-3


def test_every_input_kind_gives_the_same_embeddings(inferencer, identity_folders):
    paths = sorted(identity_folders.glob('*/*.png'))
    arrays = [np.asarray(Image.open(p).convert('RGB')) for p in paths]
    by_folder = inferencer(identity_folders, progress=False)
    assert by_folder.shape == (len(paths), 64)
    np.testing.assert_allclose(np.linalg.norm(by_folder, axis=1), 1.0, atol=1e-5)
    variants = {
        'paths': [str(p) for p in paths],
        'pathlib': paths,
        'pil': [Image.open(p) for p in paths],
        'arrays': arrays,
        'stacked array': np.stack(arrays),
        'tensors': [torch.from_numpy(a.copy()).permute(2, 0, 1) for a in arrays],
        'grey arrays': [a[..., 0] for a in arrays],
    }
    for name, images in variants.items():
        got = inferencer(images, progress=False)
        if name == 'grey arrays':
            assert got.shape == by_folder.shape and not np.allclose(got, by_folder)
            continue
        np.testing.assert_allclose(got, by_folder, atol=1e-6, err_msg=name)


def test_batch_size_does_not_change_embeddings(inferencer, identity_folders):
    paths = sorted(identity_folders.glob('*/*.png'))[:5]
    one = inferencer(paths, batch_size=1, progress=False)
    three = inferencer(paths, batch_size=3, progress=False)
    np.testing.assert_allclose(one, three, atol=1e-5)


def test_progress_bar_counts_images(inferencer, identity_folders, capsys):
    inferencer(identity_folders, batch_size=5)
    err = capsys.readouterr().err
    assert 'embedding' in err and '12/12' in err


def test_bad_images_raise_data_errors(inferencer, identity_folders, tmp_path):
    (tmp_path / 'notes.md').write_text('not an image')
    (tmp_path / 'broken.jpg').write_text('not a jpeg')
    (tmp_path / 'empty').mkdir()
    cases = {
        str(tmp_path / 'missing'): 'not found',
        str(tmp_path / 'notes.md'): 'not an image file',
        str(tmp_path / 'broken.jpg'): 'cannot read image',
        str(tmp_path / 'empty'): 'no images',
    }
    for path, words in cases.items():
        with pytest.raises(DataError, match=words) as info:
            inferencer(path, progress=False)
        assert path in str(info.value) and '\n' not in str(info.value)
    with pytest.raises(DataError, match='uint8'):
        inferencer([np.zeros((8, 4, 3), np.float32)], progress=False)
    with pytest.raises(DataError, match='images\\[1\\]'):
        inferencer([np.zeros((8, 4, 3), np.uint8), 3.5], progress=False)
    with pytest.raises(DataError, match='non-empty'):
        inferencer([], progress=False)


def test_bad_checkpoints_raise_checkpoint_errors(tmp_path):
    with pytest.raises(CheckpointError, match='not found'):
        ReIDInferencer(TINY_CONFIG, tmp_path / 'none.pth')
    truncated = tmp_path / 'truncated.pth'
    truncated.write_bytes(b'PK\x03\x04 not really')
    with pytest.raises(CheckpointError, match='truncated.pth'):
        ReIDInferencer(TINY_CONFIG, truncated)
    cfg = Config.fromfile(str(TINY_CONFIG))
    cfg.model.num_classes = 7
    other = tmp_path / 'seven_ids.pth'
    with DefaultScope.overwrite_default_scope('promptsg'):
        torch.save({'state_dict': MODELS.build(cfg.model).state_dict()}, other)
    with pytest.raises(CheckpointError, match='does not fit the model.*head'):
        ReIDInferencer(TINY_CONFIG, other)


def test_bad_options_raise_config_errors(tiny_checkpoint):
    with pytest.raises(ConfigError, match='prompt'):
        ReIDInferencer(TINY_CONFIG, tiny_checkpoint, prompt='learned')
    with pytest.raises(ConfigError, match='batch_size'):
        ReIDInferencer(TINY_CONFIG, tiny_checkpoint, batch_size=0)
    with pytest.raises(ConfigError, match='not a torch device'):
        ReIDInferencer(TINY_CONFIG, tiny_checkpoint, device='gpu0')
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match='CUDA is not available'):
            ReIDInferencer(TINY_CONFIG, tiny_checkpoint, device='cuda')
    baseline = Config.fromfile(str(TINY_CONFIG))
    baseline.model = dict(
        type='ReIDBaseline',
        num_classes=4,
        backbone=dict(baseline.model.backbone, with_text=False),
        losses=dict(triplet=dict(type='TripletLoss')),
    )
    assert ReIDInferencer(baseline)(np.zeros((1, 64, 32, 3), np.uint8), progress=False).shape == (
        1,
        64,
    )
    with pytest.raises(ConfigError, match='has no prompt'):
        ReIDInferencer(baseline, prompt='composed')
    no_pipeline = Config.fromfile(str(TINY_CONFIG))
    no_pipeline.pop('test_dataloader')
    with pytest.raises(ConfigError, match='test pipeline'):
        ReIDInferencer(no_pipeline)


def test_cuhk03_mini_query_folder(inferencer, shared_data):
    folder = shared_data / 'cuhk03_mini' / 'query'
    if not folder.is_dir():
        pytest.skip('cuhk03_mini is absent')
    feats = inferencer(folder, batch_size=50, progress=False)
    names = sorted(p.name for p in folder.iterdir() if p.suffix == '.jpg')
    assert feats.shape == (len(names), 64)
    np.testing.assert_allclose(np.linalg.norm(feats, axis=1), 1.0, atol=1e-5)
    first = inferencer(folder / names[0], progress=False)
    np.testing.assert_allclose(first[0], feats[0], atol=1e-6)


#: Every shipped chronology config, with the tiny CLIP that replaces its backbone.
SHIPPED = sorted((ROOT / 'configs').glob('*/v*.py'))
TINY_ARCH = {'vit_b16': 'tiny-vit', 'rn50': 'tiny-rn'}


def tiny_options(config: Path, **more) -> dict:
    arch = TINY_ARCH[config.parent.name]
    return {'model.backbone.arch': arch, 'model.backbone.pretrained': None, **more}


def save_shipped_checkpoint(config: Path, path: Path, num_classes: int, saved_cfg: bool = False):
    """Random weights of a shipped config with ``num_classes`` identities, with or without the
    resolved config in ``meta['cfg']`` (as mmengine saves it); returns the state dict."""
    cfg = load_config(str(config), tiny_options(config, **{'model.num_classes': num_classes}))
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('promptsg'):
        state = MODELS.build(cfg.model).state_dict()
    meta = {'cfg': cfg.pretty_text} if saved_cfg else {}
    torch.save({'state_dict': state, 'meta': meta}, path)
    return state


@pytest.mark.parametrize('config', SHIPPED, ids=lambda p: f'{p.parent.name}/{p.stem}')
def test_every_shipped_config_builds_without_checkpoint_or_data(config):
    """``num_classes=None`` and no data set here: a 1-class head, embeddings unaffected."""
    inferencer = ReIDInferencer(config, cfg_options=tiny_options(config))
    assert inferencer.cfg.model.num_classes == 1
    assert inferencer.num_classes_from.startswith('nowhere')


@pytest.mark.parametrize(
    'name', ['vit_b16/v1', 'vit_b16/v4', 'vit_b16/v6', 'vit_b16/v11', 'rn50/v6', 'rn50/v8']
)
def test_shipped_config_takes_num_classes_from_the_head_weights(name, tmp_path):
    config = ROOT / 'configs' / f'{name}.py'
    state = save_shipped_checkpoint(config, tmp_path / 'ckpt.pth', num_classes=5)
    inferencer = ReIDInferencer(config, tmp_path / 'ckpt.pth', cfg_options=tiny_options(config))
    assert inferencer.model.num_classes == 5 and inferencer.num_classes_from == 'the checkpoint'
    loaded = inferencer.model.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in state.items())


def test_num_classes_from_the_saved_config_first(tmp_path):
    """The saved config is read before any weight shape; a bare config says nothing."""
    config = ROOT / 'configs' / 'vit_b16' / 'v6.py'
    save_shipped_checkpoint(config, tmp_path / 'ckpt.pth', num_classes=7, saved_cfg=True)
    ckpt = torch.load(tmp_path / 'ckpt.pth', weights_only=True)
    assert checkpoint_num_classes(ckpt) == 7
    assert checkpoint_num_classes({'meta': {'cfg': 'model = dict(num_classes=9)'}}) == 9
    assert checkpoint_num_classes({'state_dict': {'head.weight': torch.zeros(3, 8)}}) == 3
    centers = {'losses.center.centers': torch.zeros(11, 8), 'neck.bn.weight': torch.zeros(8)}
    assert checkpoint_num_classes({'state_dict': centers}) == 11
    assert checkpoint_num_classes({'state_dict': {'neck.bn.weight': torch.zeros(8)}}) is None
    inferencer = ReIDInferencer(config, tmp_path / 'ckpt.pth', cfg_options=tiny_options(config))
    assert inferencer.model.num_classes == 7


def test_num_classes_from_the_training_set_without_checkpoint(shared_data):
    root = shared_data / '11k_hands_mini'
    if not root.is_dir():
        pytest.skip('11k_hands_mini is absent')
    config = ROOT / 'configs' / 'vit_b16' / 'v6.py'
    roots = {f'{s}_dataloader.dataset.data_root': str(root) for s in ('train', 'val', 'test')}
    inferencer = ReIDInferencer(config, cfg_options=tiny_options(config, **roots))
    cfg = Config.fromfile(str(config))
    with DefaultScope.overwrite_default_scope('promptsg'):
        train = DATASETS.build(dict(cfg.train_dataloader.dataset, data_root=str(root), pipeline=[]))
    assert inferencer.model.num_classes == train.metainfo['num_classes'] > 1
    assert inferencer.num_classes_from == 'the training set'


def test_a_work_dir_gives_its_best_checkpoint(
    tiny_checkpoint, make_checkpoint, identity_folders, tmp_path
):
    """The rule of tools/test.py: the one best_*.pth, not the latest epoch."""
    work_dir = tmp_path / 'work'
    work_dir.mkdir()
    best = work_dir / 'best_reid_mAP_epoch_1.pth'
    best.write_bytes(tiny_checkpoint.read_bytes())
    make_checkpoint(work_dir / 'epoch_2.pth', seed=1)
    by_dir = ReIDInferencer(TINY_CONFIG, work_dir)
    assert by_dir.checkpoint == str(best)
    expected = ReIDInferencer(TINY_CONFIG, tiny_checkpoint)(identity_folders, progress=False)
    np.testing.assert_array_equal(by_dir(identity_folders, progress=False), expected)
    best.unlink()
    with pytest.raises(CheckpointError, match=r'no best checkpoint .* epoch_2\.pth'):
        ReIDInferencer(TINY_CONFIG, work_dir)
