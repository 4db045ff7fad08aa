"""The chronology tools: moves diffed from the configs, work dirs read from JSON, artefacts
written; end to end, a 3-version mini chronology on synthetic data with a tiny backbone."""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from promptsg.chronology.moves import describe_moves, fmt_number
from promptsg.chronology.readme import render_readme
from promptsg.chronology.report import chronology_frame, collect, results_frame, write_artefacts
from promptsg.chronology.results import read_val_curve, split_rows, version_status
from promptsg.chronology.run import run_chronology
from promptsg.chronology.versions import find_versions, read_notes
from promptsg.datasets.base import ReIDDataset
from promptsg.engine.workdir import WorkDirLock
from promptsg.errors import ConfigError, DataError, WorkDirError

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / 'configs'
VIT = CONFIGS / 'vit_b16'


@pytest.fixture(scope='module')
def resolved() -> dict[tuple[str, str], dict]:
    return {
        (b, v.name): v.resolved() for b in ('vit_b16', 'rn50') for v in find_versions(CONFIGS / b)
    }


def moves(resolved, backbone: str, version: str) -> str:
    previous = f'v{int(version[1:]) - 1}'
    return '; '.join(describe_moves(resolved[backbone, previous], resolved[backbone, version]))


# -- moves ---------------------------------------------------------------------------------------


def test_vit_v6_moves_read_like_the_seed(resolved):
    assert moves(resolved, 'vit_b16', 'v6') == 'grad clip 5 → 1; lr_clip_visual, lr_modules → 1e-6'


@pytest.mark.parametrize(
    'backbone,version,expected',
    [
        ('vit_b16', 'v3', 'CE off'),
        (
            'vit_b16',
            'v4',
            'BNNeck on (bnneck_dim 256); linear head → ArcFace head (s 30, m 0.5); ArcFace loss on',
        ),
        ('vit_b16', 'v7', 'ArcFace loss off'),
        ('vit_b16', 'v9', 'epochs 20 → 60; patience 7 → 10'),
        ('vit_b16', 'v11', 'input 224×224 → 224×128'),
        (
            'rn50',
            'v7',
            'unfreeze_blocks -1 → 2; ArcFace s 30 → 25; ArcFace m 0.5 → 0.35; '
            'lr_clip_visual 1e-6 → 5e-4',
        ),
    ],
)
def test_moves(resolved, backbone, version, expected):
    assert moves(resolved, backbone, version) == expected


def test_rn50_v8_moves(resolved):
    text = moves(resolved, 'rn50', 'v8')
    for part in (
        'unfreeze_blocks 2 → 4',
        'bnneck_dim 256 → 1024',
        'ArcFace s 25 → 30',
        'center loss on (weight 5e-4)',
        'grad clip 1 → 0.5',
        'lr_clip_visual, lr_modules → 1e-4',
        'LR schedule warm-up 1 ep + cosine to 1e-7 → constant',
    ):
        assert part in text


def test_v2_moves_name_the_schedule_and_the_balancing(resolved):
    text = moves(resolved, 'vit_b16', 'v2')
    assert 'auto loss-balancing on (CE, triplet, SupCon)' in text
    assert 'wd 5e-4 → 1e-4' in text
    assert 'LR schedule constant → warm-up 1 ep + cosine to 1e-7' in text


def test_loss_swap_and_unknown_keys():
    old = {'model': {'losses': {'ce': {'type': 'CrossEntropyLoss'}}, 'foo': 1}}
    new = {'model': {'losses': {'arcface': {'type': 'ArcFaceLoss'}}, 'foo': 2}}
    assert describe_moves(old, new) == ['ArcFace loss replaces CE', 'model.foo 1 → 2']
    assert describe_moves(None, new) == []


def test_learning_rates_with_one_old_value_keep_it():
    old = {'optim_wrapper': {'paramwise_cfg': {'lr_clip_visual': 1e-5, 'lr_modules': 1e-5}}}
    new = {'optim_wrapper': {'paramwise_cfg': {'lr_clip_visual': 1e-4, 'lr_modules': 1e-4}}}
    assert describe_moves(old, new) == ['lr_clip_visual, lr_modules 1e-5 → 1e-4']


@pytest.mark.parametrize(
    'value,text',
    [(5.0, '5'), (0.35, '0.35'), (1e-6, '1e-6'), (2.2e-6, '2.2e-6'), (5e-4, '5e-4'), (60, '60')],
)
def test_fmt_number(value, text):
    assert fmt_number(value) == text


# -- work dirs -----------------------------------------------------------------------------------


def _scalars(run: Path, epochs: dict[int, float]) -> None:
    folder = run / 'vis_data'
    folder.mkdir(parents=True)
    lines = []
    for epoch, value in epochs.items():
        lines.append({'lr': 1e-4, 'loss': 1.0, 'epoch': epoch, 'iter': epoch, 'step': epoch})
        lines.append({'reid/mAP': value, 'reid/rank1': value + 1, 'step': epoch})
    (folder / 'scalars.json').write_text('\n'.join(json.dumps(x) for x in lines) + '\n')


def test_val_curve_fresh_runs_replace_resumed_runs_extend(tmp_path):
    _scalars(tmp_path / '20250101_000000', {1: 10.0, 2: 20.0, 3: 30.0})
    _scalars(tmp_path / '20250102_000000', {3: 33.0, 4: 40.0})  # resumed from epoch 2
    curve = read_val_curve(tmp_path)
    assert curve['epoch'].tolist() == [1, 2, 3, 4]
    assert curve['mAP'].tolist() == [10.0, 20.0, 33.0, 40.0]
    assert curve['rank1'].tolist() == [11.0, 21.0, 34.0, 41.0]
    _scalars(tmp_path / '20250103_000000', {1: 5.0})  # a fresh start
    assert read_val_curve(tmp_path)['mAP'].tolist() == [5.0]
    assert version_status(tmp_path) == 'incomplete'
    assert version_status(tmp_path / 'absent') == 'not run'


def test_split_rows():
    metrics = {
        'reid/rank1': 50.0,
        'reid/rank1_std': 5.0,
        'reid/mAP': 40.0,
        'reid/mAP_std': 4.0,
        'reid/split0/rank1': 45.0,
        'reid/split0/mAP': 36.0,
        'reid/split1/rank1': 55.0,
        'reid/split1/mAP': 44.0,
        'reid/num_valid_queries': 10.0,
    }
    rows = split_rows(metrics)
    assert [r['split'] for r in rows] == ['split0', 'split1', 'mean', 'std']
    assert rows[1] == {'split': 'split1', 'rank1': 55.0, 'mAP': 44.0}
    assert rows[3] == {'split': 'std', 'rank1': 5.0, 'mAP': 4.0}


def test_results_and_table_follow_each_versions_work_dir(tmp_path):
    """Distinct numbers per version: each row must come from its own work dir."""
    for n, version in enumerate(('v1', 'v3'), start=1):
        work_dir = tmp_path / version
        _scalars(work_dir / '20250101_000000', {1: 10.0 * n, 2: 12.0 * n})
        metrics = {'reid/rank1': 60.0 + n, 'reid/mAP': 50.0 + n, 'reid/rank1_std': 0.5 * n}
        metrics.update({'reid/mAP_std': 0.25 * n, 'reid/split0/mAP': 49.0 + n})
        metrics.update({'reid/split1/mAP': 51.0 + n, 'reid/split0/rank1': 59.0 + n})
        metrics.update({'reid/split1/rank1': 61.0 + n})
        (work_dir / 'test_metrics.json').write_text(json.dumps(metrics))
    _scalars(tmp_path / 'v2' / '20250101_000000', {1: 1.0})
    records = collect(VIT, tmp_path)
    results = results_frame(records)
    means = results[results['split'] == 'mean'].set_index('model_version')
    assert means.loc['v1', 'mAP'] == 51.0 and means.loc['v3', 'mAP'] == 52.0
    assert results[results['model_version'] == 'v3']['split'].tolist() == [
        'split0',
        'split1',
        'mean',
        'std',
    ]
    table = chronology_frame(records).set_index('Ver.')
    scores = table['Final scores (test)']
    assert scores['**v1**'] == 'R1 61.00 ± 0.50, mAP 51.00 ± 0.25'
    assert scores['**v3**'] == '**R1 62.00 ± 1.00, mAP 52.00 ± 0.50** (best)'
    assert scores['**v2**'] == 'incomplete'
    assert scores['**v4**'] == 'not run'
    assert table['Best val mAP (epoch)']['**v3**'] == '24.00 (2)'
    assert table['Configuration moves (vs previous)']['**v1**'] == 'baseline'


def test_force_moves_a_finished_run_aside_only_once_its_config_loads(tmp_path):
    finished = tmp_path / 'v8'
    finished.mkdir()
    (finished / 'test_metrics.json').write_text('{"reid/mAP": 1.0}')
    runs = run_chronology(VIT, tmp_path, versions=['v8'])
    assert [(r.name, r.action, r.metrics) for r in runs] == [('v8', 'skipped', {'reid/mAP': 1.0})]
    with pytest.raises(ConfigError, match='overlay config not found'):
        run_chronology(VIT, tmp_path, versions=['v8'], force=True, overlay=tmp_path / 'no.py')
    assert (finished / 'test_metrics.json').is_file()  # a bad config moves nothing
    assert [p.name for p in tmp_path.iterdir()] == ['v8']


def test_an_unfinished_version_is_resumed_or_refused_never_trained_over(tmp_path):
    overlay = tmp_path / 'tiny.py'
    overlay.write_text(OVERLAY)
    unfinished = tmp_path / 'v8'
    unfinished.mkdir()
    (unfinished / 'epoch_1.pth').write_bytes(b'a killed run')
    with pytest.raises(
        WorkDirError, match=r'holds a previous run \(epoch_1.pth\): pass --resume .*--force'
    ):
        run_chronology(VIT, tmp_path, versions=['v8'], overlay=overlay)
    assert (unfinished / 'epoch_1.pth').read_bytes() == b'a killed run'
    assert sorted(p.name for p in unfinished.iterdir()) == ['epoch_1.pth']  # lock released


def test_a_bad_test_set_stops_a_version_before_training(tmp_path):
    overlay = tmp_path / 'tiny.py'
    bad = f"\ntest_dataloader = dict(dataset=dict(_delete_=True, type='Market1501', data_root={str(tmp_path / 'none')!r}, pipeline=test_pipeline))\n"
    overlay.write_text(OVERLAY + bad)
    with pytest.raises(DataError, match='^test_dataloader.dataset: '):
        run_chronology(VIT, tmp_path / 'work', versions=['v8'], overlay=overlay)
    assert not list((tmp_path / 'work' / 'v8').glob('*.pth'))  # no training step ran


def test_a_version_builds_each_data_set_once(tmp_path, monkeypatch):
    checks = Counter()
    check = ReIDDataset._check_files

    def counted(self, samples):
        checks[self.split] += 1
        return check(self, samples)

    monkeypatch.setattr(ReIDDataset, '_check_files', counted)
    overlay = tmp_path / 'tiny.py'
    overlay.write_text(OVERLAY + 'train_cfg = dict(max_epochs=1)\n')
    (run,) = run_chronology(VIT, tmp_path / 'work', versions=['v8'], overlay=overlay)
    assert run.action == 'ran' and run.metrics
    assert dict(checks) == {'train': 1, 'val': 1, 'test': 1}


def test_a_version_in_use_by_another_run_is_refused(tmp_path):
    overlay = tmp_path / 'tiny.py'
    overlay.write_text(OVERLAY)
    finished = tmp_path / 'v8'
    finished.mkdir()
    (finished / 'test_metrics.json').write_text('{"reid/mAP": 1.0}')
    lock = WorkDirLock(str(finished)).acquire()
    try:
        with pytest.raises(WorkDirError, match='is in use by another run .*another --work-root'):
            run_chronology(VIT, tmp_path, versions=['v8'], force=True, overlay=overlay)
    finally:
        lock.release()
    assert [p.name for p in tmp_path.iterdir() if p.is_dir()] == ['v8']  # nothing moved aside
    assert version_status(finished) == 'done'


def test_unknown_version_is_a_config_error():
    from promptsg.chronology.versions import select_versions

    with pytest.raises(ConfigError, match='v12'):
        select_versions(find_versions(VIT), ['v12'])


def test_readme_is_generated_from_the_configs():
    assert (CONFIGS / 'README.md').read_text(encoding='utf-8') == render_readme(CONFIGS), (
        'configs/README.md is stale: run python tools/chronology.py readme'
    )


# -- end to end ----------------------------------------------------------------------------------

OVERLAY = """
# Tiny smoke overlay: random tiny CLIP, synthetic identities, two short epochs.
img_size = (64, 32)
synthetic = dict(type='SyntheticReID', num_train_ids=8, num_test_ids=8, images_per_id=4,
                 img_size=img_size, seed=0)
train_pipeline = [dict(type='LoadImage'), dict(type='Pad', padding=2),
                  dict(type='RandomCrop', size=img_size), dict(type='PackReIDInputs')]
test_pipeline = [dict(type='LoadImage'), dict(type='PackReIDInputs')]
model = dict(backbone=dict(arch='tiny-vit', pretrained=None, img_size=img_size))
train_dataloader = dict(num_workers=0, dataset=dict(
    _delete_=True, **synthetic, split='train', pipeline=train_pipeline))
val_dataloader = dict(num_workers=0, dataset=dict(
    _delete_=True, **synthetic, split='val', pipeline=test_pipeline))
test_dataloader = dict(num_workers=0, dataset=dict(
    _delete_=True, **synthetic, split='test', pipeline=test_pipeline))
train_cfg = dict(max_epochs=2)
"""
RUN = ('v8', 'v9', 'v10')


def _val_lines(work_dir: Path) -> list[dict]:
    (run,) = [p for p in work_dir.iterdir() if p.is_dir() and p.name[:8].isdigit()]
    lines = (run / 'vis_data' / 'scalars.json').read_text().splitlines()
    return [r for r in map(json.loads, lines) if 'reid/mAP' in r and 'iter' not in r]


@pytest.mark.slow
def test_mini_chronology_end_to_end(tmp_path, capsys):
    import tools.chronology as chronology_tool
    import tools.run_chronology as run_tool

    overlay = tmp_path / 'tiny.py'
    overlay.write_text(OVERLAY)
    work_root = tmp_path / 'work_dirs'
    args = ['vit_b16', '--overlay', str(overlay), '--work-root', str(work_root)]
    run_tool.main([*args, '--versions', *RUN])
    work = work_root / 'vit_b16'
    assert sorted(p.name for p in work.iterdir()) == sorted(RUN)

    out = tmp_path / 'result_logs'
    chronology_tool.main(['report', str(VIT), '--work-dirs', str(work), '--out-dir', str(out)])
    paths = {kind: out / f'stage3_vit_b16_{kind}' for kind in ('remarks.csv', 'results.csv')}
    for name in ('chronology.md', 'val_curves.png', 'final_scores.png'):
        path = out / f'stage3_vit_b16_{name}'
        assert path.is_file() and path.stat().st_size > 0
    for png in ('val_curves.png', 'final_scores.png'):
        assert (out / f'stage3_vit_b16_{png}').read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'

    remarks = pd.read_csv(paths['remarks.csv'])
    assert list(remarks.columns) == ['model_version', 'remarks']
    assert remarks['model_version'].tolist() == [f'v{n}' for n in range(1, 12)]
    assert remarks['remarks'].tolist() == [
        read_notes(VIT / f'v{n}.py')['remark'] for n in range(1, 12)
    ]

    results = pd.read_csv(paths['results.csv'])
    table = (out / 'stage3_vit_b16_chronology.md').read_text()
    rows = {line.split('|')[1].strip(): line for line in table.splitlines() if '| **v' in line}
    best = max(
        RUN, key=lambda v: json.loads((work / v / 'test_metrics.json').read_text())['reid/mAP']
    )
    for version in RUN:
        metrics = json.loads((work / version / 'test_metrics.json').read_text())
        mean = results[(results['model_version'] == version) & (results['split'] == 'mean')]
        assert len(mean) == 1
        for key in ('rank1', 'rank5', 'rank10', 'mAP', 'mINP'):
            assert mean[key].item() == metrics[f'reid/{key}']
        scores = f'R1 {metrics["reid/rank1"]:.2f}, mAP {metrics["reid/mAP"]:.2f}'
        assert scores in rows[f'**{version}**']
        assert ('(best)' in rows[f'**{version}**']) == (version == best)
        val = _val_lines(work / version)
        assert [r['step'] for r in val] == [1, 2]
        top = max(val, key=lambda r: r['reid/mAP'])
        assert f'{top["reid/mAP"]:.2f} ({top["step"]})' in rows[f'**{version}**']
    assert set(results['model_version']) == set(RUN)
    for version in ('v1', 'v5', 'v6', 'v7', 'v11'):
        assert '| not run' in rows[f'**{version}**']
    assert 'grad clip 5 → 1; lr_clip_visual, lr_modules → 1e-6' in rows['**v6**']
    assert not math.isnan(results['mAP'].sum())

    capsys.readouterr()
    run_tool.main([*args, '--versions', *RUN])  # finished versions are not re-run
    printed = capsys.readouterr().out
    assert all(f'{v} (skipped)' in printed for v in RUN)
    assert all(len(_val_lines(work / v)) == 2 for v in RUN)

    paths = write_artefacts(VIT, work, tmp_path / 'again')
    assert paths['results'].read_text() == (out / 'stage3_vit_b16_results.csv').read_text()

    old_metrics = (work / 'v8' / 'test_metrics.json').read_text()
    run_tool.main([*args, '--versions', 'v8', '--force'])  # the old run is moved aside, kept
    (moved,) = [p for p in work.iterdir() if p.name.startswith('v8.prev-')]
    assert (moved / 'test_metrics.json').read_text() == old_metrics
    assert version_status(work / 'v8') == 'done' and not (work / 'v8' / '.lock').exists()


def test_unknown_configs_name_lists_the_chronologies(load_tool):
    tool = load_tool('run_chronology')
    with pytest.raises(ConfigError, match=r'configs folder not found: vit_b1 .*: rn50, vit_b16\)$'):
        tool.configs_folder('vit_b1')
    assert tool.configs_folder('vit_b16') == str(CONFIGS / 'vit_b16')
