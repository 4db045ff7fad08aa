"""Every person-ReID config (configs/promptsg/, configs/baseline/) builds and trains one iteration.

As for the chronology configs (test_chronology_one_iteration.py), the backbone is swapped for a
tiny random CLIP through ``--cfg-options``-style overrides and the inputs scaled down; the data
is a tiny fixture in the config's own real layout (Market, Duke, Occluded-Duke, CUHK03-NP,
MSMT17 lists), made here and read through the config's loaders, so the data set type, its
``val_holdout`` and the train/val/test splits are the config's. The tiny CUHK03-mini config runs
end to end on the real mini set (slow, skipped when the shared data is absent).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope
from mmengine.runner import Runner
from PIL import Image

from promptsg.engine import runner as engine_runner
from promptsg.engine.config import fill_num_classes, load_config
from promptsg.engine.runner import build_runner, summary_line
from promptsg.errors import ConfigError
from promptsg.registry import DATASETS, HOOKS, MODELS

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / 'configs'
PAPER_CONFIGS = sorted(
    p.relative_to(CONFIGS).as_posix()
    for folder in ('promptsg', 'baseline')
    for p in (CONFIGS / folder).glob('*_1xb64_*.py')
    if not p.stem.endswith('-cross-domain')  # tested end to end below
)
TINY_CONFIG = 'promptsg/promptsg_tiny-rn_1xb32_cuhk03-mini.py'
CROSS_DOMAIN_CONFIG = 'promptsg/promptsg_vit-b16_1xb64_market1501-cross-domain.py'
#: Tiny archs with three last blocks (the ``deep_tiny_archs`` fixture of tests/conftest.py):
#: the PromptSG person models put triplet losses on the last three visual states.
TINY = {'CLIPViT': 'tiny-vit-3', 'CLIPResNet': 'tiny-rn-3'}
LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')
NUM_TRAIN_IDS = 10  # val_holdout size 0.1 holds out 1; 9 left for one P x K batch of 4 x 4
BATCH = 16


def small(size) -> tuple[int, int]:
    """256 -> 64, 128 -> 32: a multiple of the tiny archs' stride 32, aspect kept."""
    return tuple(max(32, round(d * 64 / 224 / 32) * 32) for d in size)


def _image(path: Path) -> None:
    """A 16x32 noise image, seeded by its file name (other sets, other pixels)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(zlib.crc32(path.name.encode()))
    Image.fromarray(rng.integers(0, 256, (32, 16, 3), dtype=np.uint8)).save(path)


def market_layout(root: Path, name, junk: bool = True) -> Path:
    """``bounding_box_train/``, ``query/``, ``bounding_box_test/`` with ``name(pid, cam, i)``
    files: 10 training ids (4 images each), 3 test ids (2 query, 2 gallery images each), 2
    cameras, and a junk image (pid -1) in the gallery unless ``junk=False``."""
    for pid in range(1, NUM_TRAIN_IDS + 1):
        for i in range(4):
            _image(root / 'bounding_box_train' / name(pid, i % 2 + 1, i))
    for pid in range(100, 103):
        for cam in (1, 2):
            _image(root / 'query' / name(pid, cam, 0))
            _image(root / 'bounding_box_test' / name(pid, 3 - cam, 1))
    if junk:
        _image(root / 'bounding_box_test' / name(-1, 1, 9))
    return root


def market_name(pid, cam, i):
    return f'{pid:04d}_c{cam}s1_{i:06d}_00.jpg' if pid >= 0 else f'-1_c{cam}s1_{i:06d}_00.jpg'


def duke_name(pid, cam, i):
    return f'{pid:04d}_c{cam}_f{46985 + i:07d}.jpg' if pid >= 0 else f'-1_c{cam}_f{i:07d}.jpg'


def cuhk03_name(pid, cam, i):
    return f'{pid:04d}_c{cam}_{i + 1}.png'


def veri_name(pid, cam, i):
    return f'{pid:04d}_c{cam:03d}_{16450 + i:08d}_0.jpg' if pid >= 0 else f'-1_c{cam:03d}_{i}_0.jpg'


def msmt17_layout(root: Path) -> Path:
    """MSMT17_V1: train/ and test/ with the four ``<relative path> <pid>`` lists."""
    lists = {'train': [], 'val': [], 'query': [], 'gallery': []}

    def add(part, folder, pid, cam, i):
        rel = f'{pid:04d}/{pid:04d}_{i:03d}_{cam:02d}_0303morning_{i:04d}_0.jpg'
        _image(root / folder / rel)
        lists[part].append(f'{rel} {pid}')

    for pid in range(NUM_TRAIN_IDS):
        for i in range(4):
            add('train' if i < 3 else 'val', 'train', pid, i % 2 + 1, i)
    for pid in range(3):
        for cam in (1, 2):
            add('query', 'test', pid, cam, 0)
            add('gallery', 'test', pid, 3 - cam, 1)
    for part, lines in lists.items():
        (root / f'list_{part}.txt').write_text('\n'.join(lines) + '\n')
    return root


def make_fixture(dataset_type: str, root: Path) -> Path:
    """A tiny copy of ``dataset_type``'s published layout under ``root``; its data_root."""
    if dataset_type == 'Market1501':
        return market_layout(root, market_name)
    if dataset_type in ('DukeMTMCreID', 'OccludedDuke'):
        return market_layout(root, duke_name)
    if dataset_type == 'CUHK03NP':
        market_layout(root / 'labeled', cuhk03_name, junk=False)  # CUHK03-NP has no junk
        market_layout(root / 'detected', cuhk03_name, junk=False)
        return root
    if dataset_type == 'MSMT17':
        return msmt17_layout(root)
    if dataset_type == 'VeRi776':
        folders = {'bounding_box_train': 'image_train', 'query': 'image_query'}
        folders['bounding_box_test'] = 'image_test'
        market_layout(root, veri_name)
        for market, veri in folders.items():
            (root / market).rename(root / veri)
        return root
    raise AssertionError(f'no fixture for {dataset_type}')


def tiny_options(cfg: Config, data_root: Path) -> dict:
    """Tiny backbone, scaled pipelines, the fixture as data root, no workers."""
    size = small(cfg.model.backbone.img_size)
    options = {
        'model.backbone.arch': TINY[cfg.model.backbone.type],
        'model.backbone.pretrained': None,
        'model.backbone.img_size': size,
        'train_dataloader.batch_size': BATCH,
    }
    if cfg.model.type == 'PromptSG':
        options['model.interaction.num_heads'] = 4
    for loader in LOADERS:
        options[f'{loader}.dataset.pipeline'] = [
            {**t, 'size': size} if 'size' in t else dict(t) for t in cfg[loader].dataset.pipeline
        ]
        if cfg[loader].dataset.type != 'ConcatReIDDataset':  # members have their own roots
            options[f'{loader}.dataset.data_root'] = str(data_root)
        options[f'{loader}.num_workers'] = 0
    return options


@pytest.fixture(autouse=True)
def _deep_tiny_archs(deep_tiny_archs):
    assert deep_tiny_archs == TINY


@pytest.fixture(scope='module', autouse=True)
def promptsg_scope():
    with DefaultScope.overwrite_default_scope('promptsg'):
        yield


@pytest.mark.parametrize(
    'base',
    sorted(p.name for p in (CONFIGS / '_base_' / 'datasets').glob('*.py') if 'hands' not in p.name),
)
def test_dataset_base_builds_train_val_test_on_its_layout(base, tmp_path):
    spec = load_config(str(CONFIGS / '_base_' / 'datasets' / base))
    data_root = make_fixture(spec.train_dataloader.dataset.type, tmp_path / 'data')
    cfg = load_config(str(CONFIGS / '_base_' / 'datasets' / base), data_root=str(data_root))
    built = {
        loader: DATASETS.build(dict(cfg[loader].dataset.to_dict(), pipeline=[]))
        for loader in LOADERS
    }
    assert built['train_dataloader'].metainfo['num_classes'] == NUM_TRAIN_IDS - 1
    val, test = built['val_dataloader'], built['test_dataloader']
    assert 0 < sum(val.get_data_info(i)['is_query'] for i in range(len(val))) < len(val)
    assert sum(test.get_data_info(i)['is_query'] for i in range(len(test))) == 6  # 3 ids x 2 cams
    assert {test.get_data_info(i)['pid'] for i in range(len(test))} == (
        {0, 1, 2} if spec.train_dataloader.dataset.type == 'MSMT17' else {100, 101, 102}
    )  # junk (pid -1) dropped


def test_every_dataset_and_method_has_a_config():
    assert len(PAPER_CONFIGS) == 20
    names = {Path(p).stem for p in PAPER_CONFIGS}
    for method in ('promptsg', 'baseline'):
        for backbone in ('vit-b16', 'rn50'):
            for data in ('market1501', 'msmt17', 'dukemtmc', 'cuhk03np-labeled', 'occluded-duke'):
                assert f'{method}_{backbone}_1xb64_{data}' in names


@pytest.mark.parametrize('config', PAPER_CONFIGS)
def test_paper_recipe(config):
    cfg = load_config(str(CONFIGS / config))
    assert cfg.train_dataloader.batch_size == 64
    assert cfg.train_dataloader.sampler == dict(type='PKSampler', num_instances=4, batch_size=64)
    assert tuple(cfg.model.backbone.img_size) == (256, 128)
    assert cfg.optim_wrapper.optimizer.type == 'Adam'
    assert cfg.optim_wrapper.paramwise_cfg == dict(lr_clip_visual=5e-6, lr_modules=5e-5)
    assert cfg.param_scheduler == [
        dict(type='MultiStepLR', by_epoch=True, milestones=[20, 40], gamma=0.1)
    ]
    assert cfg.train_cfg.max_epochs == 60
    train_types = [t['type'] for t in cfg.train_dataloader.dataset.pipeline]
    assert train_types == [
        'LoadImage',
        'Resize',
        'RandomHorizontalFlip',
        'Pad',
        'RandomCrop',
        'RandomErasing',
        'PackReIDInputs',
    ]
    losses = {name: loss.type for name, loss in cfg.model.losses.items()}
    if cfg.model.type == 'PromptSG':
        # the triplet on the MIM output and on the last three visual states (paper §4.3)
        triplets = ('triplet', 'tri_img', 'tri_img_1', 'tri_img_2')
        assert losses == dict(
            ce='CrossEntropyLoss', supcon='SupConLoss', **dict.fromkeys(triplets, 'TripletLoss')
        )
        inputs = [cfg.model.losses[t].get('inputs', ('feat', 'pid'))[0] for t in triplets]
        assert inputs == ['feat', 'img_feat', 'img_state_1', 'img_state_2']
        assert cfg.model.losses.supcon.loss_weight == 0.5
        if cfg.model.backbone.type == 'CLIPResNet':
            assert cfg.model.backbone.last_stride == 1  # CLIP-ReID's 16x8 grid at 256x128
    else:
        assert cfg.model.type == 'ReIDBaseline'
        assert losses == dict(ce='CrossEntropyLoss', triplet='TripletLoss')
    assert cfg.model.neck.type == 'BNNeck'
    # validation from training ids only, the same holdout for train and val; test is test
    splits = [cfg[loader].dataset.split for loader in LOADERS]
    assert splits == ['train', 'val', 'test']
    assert cfg.train_dataloader.dataset.val_holdout == cfg.val_dataloader.dataset.val_holdout
    assert cfg.val_dataloader.dataset.val_holdout['mode'] == 'ids'
    assert cfg.default_hooks.early_stopping.monitor == cfg.default_hooks.checkpoint.save_best


@pytest.mark.parametrize('config', PAPER_CONFIGS)
def test_config_trains_one_iteration(config, tmp_path):
    spec = load_config(str(CONFIGS / config))
    data_root = make_fixture(spec.train_dataloader.dataset.type, tmp_path / 'data')
    cfg = load_config(str(CONFIGS / config), tiny_options(spec, data_root))
    assert fill_num_classes(cfg) == NUM_TRAIN_IDS - 1  # one id held out for validation

    val = DATASETS.build(cfg.val_dataloader.dataset.to_dict())
    test = DATASETS.build(cfg.test_dataloader.dataset.to_dict())
    assert any(val.get_data_info(i)['is_query'] for i in range(len(val)))
    assert {test.get_data_info(i)['pid'] for i in range(len(test))}.isdisjoint(
        {val.get_data_info(i)['pid'] for i in range(len(val))}
    )

    model = MODELS.build(cfg.model)
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    lrs = {g['name']: g['lr'] for g in optim_wrapper.param_groups if 'name' in g}
    assert lrs == {'clip_visual': 5e-6, 'modules': 5e-5}
    HOOKS.build(cfg.default_hooks.early_stopping.to_dict())

    loader = Runner.build_dataloader(cfg.train_dataloader, seed=0)
    batch = next(iter(loader))
    assert batch['inputs'].shape == (BATCH, 3, *small(spec.model.backbone.img_size))
    trainable = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    model.train()
    log_vars = model.train_step(batch, optim_wrapper)

    assert math.isfinite(float(log_vars['loss'].detach()))
    assert {f'loss_{name}' for name in spec.model.losses} <= set(log_vars)
    moved = {
        n
        for n, p in model.named_parameters()
        if n in trainable and not torch.equal(p, trainable[n])
    }
    assert any(n.startswith('backbone.') for n in moved)
    assert any(n.startswith('neck.') for n in moved)
    if cfg.model.type == 'PromptSG':
        assert any(n.startswith(('inversion.', 'interaction.')) for n in moved)


def test_tiny_cuhk03_mini_config_builds_on_the_real_mini_set(shared_data):
    root = shared_data / 'cuhk03_mini'
    if not root.is_dir():
        pytest.skip('cuhk03_mini is absent')
    cfg = load_config(str(CONFIGS / TINY_CONFIG), data_root=str(root))
    assert fill_num_classes(cfg) == 40  # 50 training ids, 10 held out for validation
    train = DATASETS.build(dict(cfg.train_dataloader.dataset.to_dict(), pipeline=[]))
    val = DATASETS.build(dict(cfg.val_dataloader.dataset.to_dict(), pipeline=[]))
    test = DATASETS.build(dict(cfg.test_dataloader.dataset.to_dict(), pipeline=[]))
    paths = {
        name: {d.get_data_info(i)['img_path'] for i in range(len(d))}
        for name, d in (('train', train), ('val', val), ('test', test))
    }
    assert paths['train'].isdisjoint(paths['val'])
    assert (paths['train'] | paths['val']).isdisjoint(paths['test'])
    assert len(paths['train']) + len(paths['val']) == len(list(root.glob('bounding_box_train/*')))


@pytest.mark.slow
def test_tiny_cuhk03_mini_config_trains_validates_and_tests(shared_data, tmp_path):
    """tools/train.py on the real mini set for a short budget (one epoch at 64x32): validation
    on held-out training ids, the best checkpoint tested on the test split."""
    root = shared_data / 'cuhk03_mini'
    if not root.is_dir():
        pytest.skip('cuhk03_mini is absent')
    work_dir = tmp_path / 'work'
    cmd = [
        sys.executable,
        str(ROOT / 'tools' / 'train.py'),
        str(CONFIGS / TINY_CONFIG),
        '--work-dir',
        str(work_dir),
        '--data-root',
        str(root),
        '--cfg-options',
        'train_cfg.max_epochs=1',
        'model.backbone.img_size=(64,32)',
        'train_dataloader.dataset.pipeline.1.size=(64,32)',
        'train_dataloader.dataset.pipeline.4.size=(64,32)',
        'val_dataloader.dataset.pipeline.1.size=(64,32)',
        'test_dataloader.dataset.pipeline.1.size=(64,32)',
        'train_dataloader.num_workers=0',
        'val_dataloader.num_workers=0',
        'test_dataloader.num_workers=0',
    ]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    log = done.stdout + done.stderr
    assert 'testing the best checkpoint' in log
    assert 'Rank-1' in done.stdout and 'mAP' in done.stdout
    metrics = json.loads((work_dir / 'test_metrics.json').read_text())
    # the 100 test queries (none from validation), less the one whose id has no gallery image
    # from the other camera (the camera rule skips it)
    assert metrics['reid/num_valid_queries'] == 99
    assert list(work_dir.glob('best_*.pth'))


@pytest.mark.slow
def test_cross_domain_config_trains_on_market_and_reports_each_test_set(tmp_path):
    """Train (one epoch, tiny) on a Market fixture, validate on its held-out ids, test the best
    checkpoint on Market + Duke + MSMT17 fixtures: each test set reported on its own."""
    market = market_layout(tmp_path / 'market', market_name)
    roots = [market, market_layout(tmp_path / 'duke', duke_name), msmt17_layout(tmp_path / 'msmt')]
    spec = load_config(str(CONFIGS / CROSS_DOMAIN_CONFIG))
    options = tiny_options(spec, market)
    options.update(
        {f'test_dataloader.dataset.datasets.{i}.data_root': str(r) for i, r in enumerate(roots)}
    )
    options.update({'train_cfg.max_epochs': 1, 'default_hooks.logger.interval': 1})
    cfg = load_config(str(CONFIGS / CROSS_DOMAIN_CONFIG), options)
    runner = build_runner(cfg, work_dir=str(tmp_path / 'work'))
    runner.train()
    metrics = engine_runner.test_best_checkpoint(runner)

    names = ('market1501', 'dukemtmcreid', 'msmt17')
    for key in ('rank1', 'mAP'):
        per_set = [metrics[f'reid/{name}/{key}'] for name in names]
        assert metrics[f'reid/{key}'] == pytest.approx(sum(per_set) / 3)
    # every test set's own 6 queries (3 ids x 2 cameras), each matched in its own gallery only
    assert [metrics[f'reid/{name}/num_valid_queries'] for name in names] == [6, 6, 6]
    line = summary_line(metrics)
    assert '(mean of 3 test sets)' in line
    assert all(f'{name}: Rank-1' in line for name in names)


def test_one_data_root_for_several_test_sets_is_a_config_error():
    """--data-root would reach ConcatReIDDataset (no data_root) only at test time, after training."""
    with pytest.raises(ConfigError, match=r'test_dataloader\.dataset\.datasets\.<i>\.data_root'):
        load_config(str(CONFIGS / CROSS_DOMAIN_CONFIG), data_root='/data/market1501')
