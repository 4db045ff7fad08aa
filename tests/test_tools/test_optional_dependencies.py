"""A missing optional dependency is one ``error:`` line naming the ``pip install`` that fixes it
(``promptsg.optional.require``); the import is made to fail with ``sys.modules[name] = None``."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from promptsg.apis import ReIDInferencer  # noqa: F401  (imported before onnx is hidden)
from promptsg.engine.cli import run_cli
from promptsg.errors import MissingDependencyError, PromptSGError
from promptsg.optional import require

TINY_CONFIG = Path(__file__).resolve().parents[1] / 'test_apis' / 'tiny_promptsg.py'


def test_require_returns_the_module_or_names_the_install(monkeypatch):
    assert require('json', 'anything').dumps([1]) == '[1]'
    monkeypatch.setitem(sys.modules, 'onnx', None)
    with pytest.raises(MissingDependencyError) as info:
        require('onnx', 'ONNX export')
    assert str(info.value) == (
        'ONNX export needs the optional package onnx, which is not installed: pip install onnx'
    )
    assert isinstance(info.value, PromptSGError) and isinstance(info.value, ImportError)
    monkeypatch.setitem(sys.modules, 'faiss', None)
    with pytest.raises(MissingDependencyError, match='pip install faiss-cpu$'):
        require('faiss', 'index search')


def test_a_broken_install_says_why(tmp_path, monkeypatch):
    (tmp_path / 'broken_optional_pkg.py').write_text('import no_such_module_inside\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(MissingDependencyError, match='cannot be imported .*no_such_module_inside'):
        require('broken_optional_pkg', 'a feature')


def _export(load_tool, tmp_path, capsys, *extra: str) -> tuple[int, str]:
    argv = [str(TINY_CONFIG), 'unused.pth', '--out', str(tmp_path / 'm.onnx'), *extra]
    with pytest.raises(SystemExit) as info:
        run_cli(lambda: load_tool('export_onnx').main(argv))
    return info.value.code, capsys.readouterr().err.strip()


def test_export_onnx_without_onnx_is_one_line(load_tool, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, 'onnx', None)
    code, err = _export(load_tool, tmp_path, capsys)
    assert code == 2
    assert err == (
        'error: ONNX export needs the optional package onnx, which is not installed: '
        'pip install onnx'
    )


def test_export_onnx_without_onnxruntime_points_at_no_verify(
    load_tool, checkpoint, tmp_path, capsys, monkeypatch
):
    monkeypatch.setitem(sys.modules, 'onnxruntime', None)
    code, err = _export(load_tool, tmp_path, capsys)
    assert code == 2 and '\n' not in err
    assert 'onnxruntime' in err and '--no-verify' in err and err.endswith('pip install onnxruntime')
    out = tmp_path / 'unverified.onnx'
    argv = [str(TINY_CONFIG), str(checkpoint), '--out', str(out), '--no-verify']
    assert load_tool('export_onnx').main(argv) is None
    assert out.is_file()


QUICKSTART = (
    Path(__file__).resolve().parents[2] / 'configs' / 'quickstart' / 'synthetic_promptsg.py'
)


@pytest.mark.parametrize(
    'backend,package',
    [
        ("dict(type='WandbVisBackend', init_kwargs=dict(project='promptsg'))", 'wandb'),
        ("dict(type='MLflowVisBackend', exp_name='promptsg')", 'mlflow'),
        ("dict(type='TensorboardVisBackend')", 'tensorboard'),
    ],
)
def test_a_vis_backend_without_its_package_is_one_line(
    backend, package, load_tool, tmp_path, capsys, monkeypatch
):
    """The docs' snippet (docs/tools.md), with the backend's package missing."""
    monkeypatch.setitem(sys.modules, package, None)
    config = tmp_path / 'with_backend.py'
    config.write_text(
        f"_base_ = '{QUICKSTART}'\n"
        f"visualizer = dict(vis_backends=[dict(type='LocalVisBackend'), {backend}])\n"
    )
    argv = [
        str(config),
        '--work-dir',
        str(tmp_path / 'work'),
        '--cfg-options',
        'train_cfg.max_epochs=1',
    ]
    with pytest.raises(SystemExit) as info:
        run_cli(lambda: load_tool('train').main(argv))
    err = capsys.readouterr().err.strip()
    name = backend.split("'")[1]
    assert info.value.code == 2 and not (tmp_path / 'work').exists()
    assert err == (
        f'error: visualizer.vis_backends {name} needs the optional package {package}, which is '
        f'not installed: pip install {package}'
    )
