"""``python -m promptsg list``: one line per registry kind, with what it holds."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from mmengine.config import Config

from promptsg.__main__ import main
from promptsg.registry import KINDS

ROOT = Path(__file__).resolve().parents[1]

#: Components that must be listed, by kind (a sample of SPEC §2).
EXPECTED = {
    'backbones': {'CLIPViT', 'CLIPResNet'},
    'prompt_modules': {
        'InversionNetwork',
        'PromptComposer',
        'FixedPrompt',
        'MultimodalInteraction',
    },
    'heads': {'LinearClassifier', 'BNNeck', 'ArcFaceHead'},
    'losses': {'CrossEntropyLoss', 'TripletLoss', 'SupConLoss', 'ArcFaceLoss', 'CenterLoss'},
    'models': {'PromptSG', 'ReIDBaseline', 'ReIDDataPreprocessor'},
    'datasets': {'SyntheticReID', 'Market1501', 'Hands11k', 'HD'},
    'samplers': {'PKSampler'},
    'transforms': {'LoadImage', 'Resize', 'PackReIDInputs'},
    'metrics': {'ReIDMetric'},
    'hooks': {'ReIDTrainingHook'},
}


def _parse(out: str) -> dict[str, list[str]]:
    """``kind (n): a, b, c`` lines -> {kind: [a, b, c]}, checking n."""
    listed = {}
    for line in out.strip().splitlines():
        head, _, names = line.partition(': ')
        kind, count = head.rsplit(' (', 1)
        names = [] if names == '-' else names.split(', ')
        assert int(count.rstrip(')')) == len(names), line
        listed[kind] = names
    return listed


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, '-m', 'promptsg', *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_list_prints_every_kind_in_a_fresh_process():
    proc = _run('list')
    assert proc.returncode == 0, proc.stderr
    listed = _parse(proc.stdout)
    assert list(listed) == list(KINDS)
    for kind, names in EXPECTED.items():
        assert names <= set(listed[kind]), kind
        assert listed[kind] == sorted(listed[kind])


def test_list_includes_mmengine_components_in_a_fresh_process():
    """Schedulers are all mmengine's: the list once printed ``schedulers (0): -``."""
    proc = _run('list', 'schedulers')
    assert proc.returncode == 0, proc.stderr
    names = _parse(proc.stdout)['schedulers']
    assert {'LinearLR', 'CosineAnnealingLR', 'MultiStepLR', 'ConstantLR'} <= set(names)


def test_no_kind_is_empty_and_every_type_a_shipped_config_names_is_listed(capsys):
    main(['list'])
    listed = _parse(capsys.readouterr().out)
    assert all(listed.values()), [k for k, v in listed.items() if not v]
    every = set().union(*listed.values())
    configs = sorted((ROOT / 'configs').glob('*/*.py'))
    types = set()
    for path in configs:
        types |= _types(Config.fromfile(str(path)).to_dict())
    assert len(configs) >= 23 and len(types) > 20
    assert types <= every, sorted(types - every)
    assert {'AdamW', 'LocalVisBackend', 'WandbVisBackend', 'MLflowVisBackend'} <= every


def _types(tree) -> set[str]:
    """Every ``type`` string in a config tree, without a ``promptsg.`` scope prefix."""
    if isinstance(tree, dict):
        own = {tree['type'].split('.')[-1]} if isinstance(tree.get('type'), str) else set()
        return own.union(*(_types(v) for v in tree.values()))
    if isinstance(tree, (list, tuple)):
        return set().union(*(_types(v) for v in tree))
    return set()


def test_list_one_kind(capsys):
    assert main(['list', 'heads']) == 0
    listed = _parse(capsys.readouterr().out)
    assert list(listed) == ['heads']
    assert EXPECTED['heads'] <= set(listed['heads'])


def test_list_own_leaves_out_mmengine_hooks(capsys):
    main(['list', 'hooks', '--own'])
    own = set(_parse(capsys.readouterr().out)['hooks'])
    main(['list', 'hooks'])
    every = set(_parse(capsys.readouterr().out)['hooks'])
    assert own < every
    assert {'CheckpointHook', 'EarlyStoppingHook'} <= every - own


def test_unknown_kind_exits_2_naming_choices(capsys):
    with pytest.raises(SystemExit) as info:
        main(['list', 'backbone'])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'backbone'" in err and "'backbones'" in err


def test_a_closed_pipe_stops_a_tool_without_a_traceback():
    """``tool | head``: the reader leaves early; no BrokenPipeError traceback on stderr."""
    import subprocess
    import sys

    code = (
        'from promptsg.engine.cli import run_cli\n'
        "run_cli(lambda: [print('x' * 100) for _ in range(200000)])\n"
    )
    done = subprocess.run(
        f'{sys.executable} -c "{code}" | head -1',
        shell=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.stdout == 'x' * 100 + '\n'
    assert 'Traceback' not in done.stderr and 'BrokenPipe' not in done.stderr
