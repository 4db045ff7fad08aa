"""``python -m promptsg list``: one line per registry kind, with what it holds."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

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


def test_list_all_includes_mmengine_components_in_a_fresh_process():
    proc = _run('list', 'schedulers', '--all')
    assert proc.returncode == 0, proc.stderr
    names = _parse(proc.stdout)['schedulers']
    assert {'LinearLR', 'CosineAnnealingLR', 'MultiStepLR', 'ConstantLR'} <= set(names)


def test_list_one_kind(capsys):
    assert main(['list', 'heads']) == 0
    listed = _parse(capsys.readouterr().out)
    assert list(listed) == ['heads']
    assert EXPECTED['heads'] <= set(listed['heads'])


def test_list_all_hooks_adds_mmengine_hooks(capsys):
    main(['list', 'hooks'])
    own = set(_parse(capsys.readouterr().out)['hooks'])
    main(['list', 'hooks', '--all'])
    every = set(_parse(capsys.readouterr().out)['hooks'])
    assert own < every
    assert {'CheckpointHook', 'EarlyStoppingHook'} <= every - own


def test_unknown_kind_exits_2_naming_choices(capsys):
    with pytest.raises(SystemExit) as info:
        main(['list', 'backbone'])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'backbone'" in err and "'backbones'" in err
