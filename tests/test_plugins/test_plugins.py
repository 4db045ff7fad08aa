"""Plugins: the example CosFace package by custom_imports and by entry point, and name rules."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from importlib.metadata import EntryPoint, PackageNotFoundError, version
from importlib.util import find_spec
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from promptsg import plugins
from promptsg.engine.checkpoint import load_checkpoint_file
from promptsg.plugins import PLUGIN_GROUP, NameClashError, PluginError, import_plugins
from promptsg.registry import HEADS, LOSSES, OPTIMIZERS

ROOT = Path(__file__).resolve().parents[2]
PLUGIN_SRC = ROOT / 'examples' / 'plugin_head'
PLUGIN_CONFIG = PLUGIN_SRC / 'configs' / 'synthetic_cosface.py'


def _run(args: list[str], pythonpath: list[Path], cwd: Path, **env) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k != 'PROMPTSG_NO_PLUGINS'}
    environ['PYTHONPATH'] = ':'.join(str(p) for p in pythonpath)
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env={**environ, **env},
        capture_output=True,
        text=True,
        timeout=600,
    )


def _module(folder: Path, name: str, source: str) -> Path:
    (folder / f'{name}.py').write_text(textwrap.dedent(source))
    return folder


@pytest.fixture
def example_plugin(monkeypatch):
    monkeypatch.syspath_prepend(str(PLUGIN_SRC))
    import promptsg_plugin_head

    return promptsg_plugin_head


def test_cosface_head_and_loss(example_plugin):
    head = HEADS.build(dict(type='CosFaceHead', in_channels=6, num_classes=5, margin=0.4))
    loss = LOSSES.build(dict(type='CosFaceLoss'))
    assert HEADS.get('CosFaceHead') is example_plugin.CosFaceHead
    feat, labels = torch.randn(4, 6), torch.tensor([0, 3, 3, 1])
    cos = F.normalize(feat) @ F.normalize(head.weight).t()
    torch.testing.assert_close(head(feat), 30.0 * cos)
    margin = head(feat, labels)
    target = F.one_hot(labels, 5).bool()
    torch.testing.assert_close(margin[target], 30.0 * (cos[target] - 0.4))
    torch.testing.assert_close(margin[~target], 30.0 * cos[~target])
    value = loss(margin, labels)['loss_cosface']
    torch.testing.assert_close(value, F.cross_entropy(margin, labels))


def test_a_name_clash_is_one_line_naming_module_kind_and_name(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    _module(
        tmp_path,
        'clashing_plugin_mod',
        """
        from promptsg.registry import HEADS

        @HEADS.register_module(name='ArcFaceHead')
        class MyArcFace:
            pass
        """,
    )
    builtin = HEADS.get('ArcFaceHead')
    with pytest.raises(NameClashError) as info:
        import_plugins([EntryPoint('clash', 'clashing_plugin_mod', PLUGIN_GROUP)])
    message = str(info.value)
    assert '\n' not in message and isinstance(info.value, KeyError)
    assert "clashing_plugin_mod.MyArcFace cannot be registered as head 'ArcFaceHead'" in message
    assert 'built-in promptsg.heads.arcface.ArcFaceHead' in message
    assert HEADS.get('ArcFaceHead') is builtin


def test_force_never_replaces_a_builtin_but_may_replace_a_plugin(monkeypatch):
    class Mine:
        pass

    with pytest.raises(NameClashError, match="head 'BNNeck'.*force=True never replaces"):
        HEADS.register_module(name='BNNeck', force=True, module=Mine)
    assert HEADS.get('BNNeck').__module__ == 'promptsg.heads.bnneck'
    with pytest.raises(NameClashError, match="optimizer 'AdamW'.*torch.optim"):
        OPTIMIZERS.register_module(name='AdamW', module=Mine)  # mmengine's, reached via ours
    assert OPTIMIZERS.get('AdamW') is torch.optim.AdamW

    class Again:
        pass

    monkeypatch.delitem(HEADS._module_dict, 'PluginTestHead', raising=False)
    try:
        HEADS.register_module(name='PluginTestHead', module=Mine)
        with pytest.raises(NameClashError, match='taken by .*Mine'):
            HEADS.register_module(name='PluginTestHead', module=Again)
        HEADS.register_module(name='PluginTestHead', force=True, module=Again)
        assert HEADS.get('PluginTestHead') is Again
    finally:
        HEADS._module_dict.pop('PluginTestHead', None)


def test_entry_points_load_once_and_can_be_disabled(tmp_path, monkeypatch):
    site = tmp_path / 'site'
    info = site / 'demo_reid_plugin-1.0.dist-info'
    info.mkdir(parents=True)
    (info / 'METADATA').write_text('Metadata-Version: 2.1\nName: demo-reid-plugin\nVersion: 1.0\n')
    (info / 'entry_points.txt').write_text(f'[{PLUGIN_GROUP}]\ndemo = demo_reid_plugin_mod\n')
    _module(site, 'demo_reid_plugin_mod', 'LOADS = []\nLOADS.append(1)\n')
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setattr(plugins, '_discovered', False)
    monkeypatch.setattr(plugins, '_loaded', {})
    monkeypatch.setenv('PROMPTSG_NO_PLUGINS', '1')
    assert plugins.load_plugins() == {}
    assert 'demo_reid_plugin_mod' not in sys.modules

    monkeypatch.setattr(plugins, '_discovered', False)
    monkeypatch.delenv('PROMPTSG_NO_PLUGINS')
    monkeypatch.delitem(sys.modules, 'demo_reid_plugin_mod', raising=False)
    assert plugins.load_plugins()['demo'] == 'demo_reid_plugin_mod'
    assert plugins.load_plugins()['demo'] == 'demo_reid_plugin_mod'
    assert sys.modules['demo_reid_plugin_mod'].LOADS == [1]
    HEADS.names()  # a look-up loads plugins; nothing is imported twice
    assert sys.modules['demo_reid_plugin_mod'].LOADS == [1]


def test_a_broken_plugin_is_one_line_naming_it(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    _module(tmp_path, 'broken_reid_plugin_mod', 'import a_module_that_is_not_there\n')
    with pytest.raises(PluginError) as info:
        import_plugins([EntryPoint('broken', 'broken_reid_plugin_mod', PLUGIN_GROUP)])
    message = str(info.value)
    assert '\n' not in message
    assert message.startswith("plugin 'broken' (broken_reid_plugin_mod) failed to import")
    assert 'a_module_that_is_not_there' in message and 'PROMPTSG_NO_PLUGINS' in message


def test_a_clash_is_found_whatever_the_import_order(tmp_path):
    """Fresh process: the plugin registers before promptsg's heads were ever imported."""
    _module(
        tmp_path,
        'early_clash_mod',
        """
        from promptsg.registry import HEADS

        HEADS.register_module(name='LinearClassifier', module=type('Early', (), {}))
        """,
    )
    proc = _run(['-c', 'import early_clash_mod'], [tmp_path, ROOT], cwd=tmp_path)
    assert proc.returncode != 0
    assert (
        'promptsg.plugins.NameClashError: early_clash_mod.Early cannot be registered as head '
        "'LinearClassifier': the name is taken by built-in promptsg.heads.linear.LinearClassifier"
    ) in proc.stderr


def _can_build_offline() -> bool:
    """setuptools >= 70.1 builds wheels by itself; older ones need the wheel package."""
    try:
        major_minor = tuple(int(x) for x in version('setuptools').split('.')[:2])
    except (PackageNotFoundError, ValueError):
        return False
    return major_minor >= (70, 1) or find_spec('wheel') is not None


def test_pip_installed_plugin_is_found_through_its_entry_point(tmp_path):
    if not _can_build_offline():
        pytest.skip('this venv cannot build the example package offline (needs setuptools>=70.1)')
    src, site = tmp_path / 'src', tmp_path / 'site'
    shutil.copytree(PLUGIN_SRC, src, ignore=shutil.ignore_patterns('build', '*.egg-info'))
    pip = [sys.executable, '-m', 'pip', 'install', '--no-deps', '--no-build-isolation']
    pip += ['--no-index', '--quiet', '--target', str(site), str(src)]
    proc = subprocess.run(pip, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    script = textwrap.dedent(
        """
        from promptsg.__main__ import main
        from promptsg.plugins import load_plugins
        from promptsg.registry import HEADS, LOSSES

        print(HEADS.get('CosFaceHead').__module__, LOSSES.get('CosFaceLoss').__module__)
        print(load_plugins())
        main(['list', 'heads'])
        """
    )
    proc = _run(['-c', script], [site, ROOT], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == 'promptsg_plugin_head.cosface promptsg_plugin_head.cosface'
    assert lines[1] == "{'cosface': 'promptsg_plugin_head'}"
    assert 'CosFaceHead' in lines[2].split(': ', 1)[1].split(', ')


def test_train_one_iteration_with_the_plugin_head(tmp_path):
    """tools/train.py puts tools/ on sys.path: the config's custom_imports finds the plugin on
    PYTHONPATH (not installed, so no entry point is involved)."""
    work_dir = tmp_path / 'work'
    options = [
        'train_cfg.max_epochs=1',
        'model.num_classes=8',
        'train_dataloader.dataset.num_train_ids=8',
        'train_dataloader.dataset.images_per_id=4',
        'val_dataloader.dataset.num_train_ids=8',
        'val_dataloader.dataset.images_per_id=4',
        'default_hooks.checkpoint.interval=1',
    ]
    proc = _run(
        [str(ROOT / 'tools' / 'train.py'), str(PLUGIN_CONFIG), '--work-dir', str(work_dir)]
        + ['--no-test', '--cfg-options', *options],
        [PLUGIN_SRC],
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (scalars,) = work_dir.glob('*/vis_data/scalars.json')
    train_logs = [r for r in map(json.loads, scalars.read_text().splitlines()) if 'loss' in r]
    assert [r['iter'] for r in train_logs] == [1]
    assert set(train_logs[0]) >= {'loss_cosface', 'loss_triplet', 'loss_supcon'}
    assert 0 < train_logs[0]['loss_cosface'] < float('inf')
    checkpoint = load_checkpoint_file(str(work_dir / 'epoch_1.pth'))
    state = checkpoint['state_dict']
    assert state['head.weight'].shape[0] == 8 and 'head.fc.weight' not in state
