"""tools/analysis_tools (analyze_logs, get_flops) and tools/misc (print_config,
browse_dataset) on a tiny training run of a shipped config and on its config."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mmengine.config import Config
from PIL import Image

from promptsg.analysis.logs import match_keys, read_run_log
from promptsg.engine.cli import run_cli
from promptsg.engine.config import load_config
from promptsg.errors import ConfigError, DataError

ROOT = Path(__file__).resolve().parents[2]
V6 = str(ROOT / 'configs' / 'vit_b16' / 'v6.py')
HANDS = ROOT.parent / 'shared' / 'data' / '11k_hands_mini'


def fails(main, argv, capsys) -> str:
    """The one ``error:`` line ``run_cli`` prints for ``main(argv)`` (exit status 2)."""
    with pytest.raises(SystemExit) as info:
        run_cli(lambda: main(argv))
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith('error: ') and '\n' not in err
    return err


def _scalars(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.mark.slow
def test_analyze_logs_reads_what_the_run_logged(hands_v6_run):
    log = read_run_log(hands_v6_run)
    (scalars,) = hands_v6_run.glob('*/vis_data/scalars.json')
    records = _scalars(scalars)
    train = [r for r in records if 'iter' in r]
    val = [r for r in records if 'iter' not in r]
    assert log.train['loss'].tolist() == [r['loss'] for r in train]
    assert log.val['reid/mAP'].tolist() == [r['reid/mAP'] for r in val]
    assert log.val['step'].tolist() == [1, 2]  # epochs
    train_keys, val_keys = match_keys([log], ['loss*', 'lr_*', 'reid/mAP'])
    assert {'loss', 'loss_triplet', 'loss_supcon', 'loss_arcface'} <= set(train_keys)
    assert {'lr_clip_visual', 'lr_modules'} <= set(train_keys) and val_keys == ['reid/mAP']
    with pytest.raises(ConfigError, match="'reid/map' matches no logged scalar.*reid/mAP"):
        match_keys([log], ['reid/map'])


@pytest.mark.slow
def test_analyze_logs_plot_and_time(hands_v6_run, load_tool, tmp_path, capsys):
    tool = load_tool('analysis_tools/analyze_logs')
    out = tmp_path / 'curves.png'
    argv = ['plot', str(hands_v6_run), str(hands_v6_run), '--legend', 'a', 'b']
    tool.main([*argv, '--keys', 'loss', 'lr_*', 'reid/rank1', '--out', str(out)])
    printed = capsys.readouterr().out
    assert 'loss, lr_clip_visual, lr_modules (per iteration); reid/rank1 (validation' in printed
    with Image.open(out) as image:
        assert image.format == 'PNG' and image.width > 1000  # 3 panels a row
    (row,) = tool.main(['time', str(hands_v6_run)])
    printed = capsys.readouterr().out
    assert row['iters'] == max(read_run_log(hands_v6_run).train['step'])
    assert 0 < row['data'] < row['mean'] and row['epochs'] == 2
    assert 's/iter' in printed and 'v6' in printed
    err = fails(tool.main, ['plot', str(tmp_path / 'none')], capsys)
    assert (
        err
        == f'error: log not found: {tmp_path / "none"} (pass a work dir, a run folder or a .json log)'
    )


def test_a_resumed_run_continues_the_curve(tmp_path):
    def write(run: str, steps: range, loss: float) -> None:
        folder = tmp_path / run / 'vis_data'
        folder.mkdir(parents=True)
        lines = [json.dumps(dict(loss=loss, time=0.1, epoch=1, iter=s, step=s)) for s in steps]
        (folder / 'scalars.json').write_text('\n'.join(lines) + '\n')

    write('20250101_000000', range(1, 6), 1.0)
    write('20250101_010000', range(4, 9), 2.0)  # resumed at step 4
    log = read_run_log(tmp_path)
    assert log.train['step'].tolist() == list(range(1, 9))
    assert log.train['loss'].tolist() == [1.0] * 3 + [2.0] * 5
    assert log.starts == [1, 4]
    (tmp_path / 'empty').mkdir()
    with pytest.raises(DataError, match='no mmengine JSON log'):
        read_run_log(tmp_path / 'empty')


def test_print_config_is_the_resolved_config(load_tool, tmp_path, capsys):
    tool = load_tool('misc/print_config')
    out = tmp_path / 'resolved.py'
    text = tool.main([V6, '--cfg-options', 'model.backbone.arch=tiny-vit', '--out', str(out)])
    assert capsys.readouterr().out.strip() == text.strip()
    printed = Config.fromstring(text, file_format='.py')
    expected = load_config(V6, {'model.backbone.arch': 'tiny-vit'})
    assert printed.to_dict() == expected.to_dict()
    assert printed.model.backbone.arch == 'tiny-vit' and '_base_' not in printed
    assert printed.optim_wrapper.paramwise_cfg.lr_clip_visual == 1e-6  # v6's move
    assert printed.model.interaction.num_self_layers == 2  # from v5, a _base_
    assert Config.fromfile(str(out)).to_dict() == expected.to_dict()
    err = fails(tool.main, [V6, '--cfg-options', 'model.backbne.arch=x'], capsys)
    assert "'backbne' is not in model" in err


def test_print_config_fills_num_classes_from_the_data(load_tool, capsys):
    if not HANDS.is_dir():
        pytest.skip('11k_hands_mini is absent')
    text = load_tool('misc/print_config').main([V6, '--data-root', str(HANDS), '--num-classes'])
    assert Config.fromstring(text, file_format='.py').model.num_classes > 1


def test_browse_dataset_statistics_and_grid(load_tool, tmp_path, capsys):
    if not HANDS.is_dir():
        pytest.skip('11k_hands_mini is absent')
    tool = load_tool('misc/browse_dataset')
    grid = tmp_path / 'samples.png'
    argv = [V6, '--data-root', str(HANDS), '--grid', str(grid), '--ids', '3', '--per-id', '2']
    tables = dict(tool.main([*argv, '--cfg-options', 'model.backbone.arch=tiny-vit']))
    printed = capsys.readouterr().out
    assert set(tables) == {'train', 'val', 'test'}
    (train,) = tables['train']
    assert train['subset'] == 'train' and train['images'] >= train['ids'] > 1
    assert {r['subset'] for r in tables['test']} == {'query', 'gallery'}
    assert 'Hands11k (train_dataloader) statistics:' in printed
    assert '6 training samples (3 identities, one per row; 224x224' in printed
    with Image.open(grid) as image:  # 2 cells of 224 + gaps 4 wide; 3 rows of 224 + caption 14
        assert image.size == (4 + 2 * (224 + 4), 4 + 3 * (224 + 14 + 4))
    err = fails(tool.main, [V6, '--grid', str(tmp_path / 'g.jpg')], capsys)
    assert 'name it *.png' in err
    err = fails(tool.main, [V6, '--splits', 'train'], capsys)  # data/11k_hands is not here
    assert 'data_root does not exist' in err


def test_get_flops_counts_parameters_and_attention(load_tool, capsys):
    tool = load_tool('analysis_tools/get_flops')
    argv = [V6, '--cfg-options', 'model.backbone.arch=tiny-vit', 'model.backbone.pretrained=None']
    result = tool.main(argv)
    printed = capsys.readouterr().out
    rows = {r['part']: r for r in result['parameters']}
    assert rows['backbone.text_encoder']['trainable'] == 0  # frozen, SPEC §1
    assert rows['backbone.text_encoder']['frozen'] > 0
    assert rows['backbone.visual']['frozen'] == 0  # unfreeze_blocks=-1
    parts = [r for name, r in rows.items() if name != 'total']
    assert rows['total']['total'] == sum(r['total'] for r in parts)
    # tiny-vit at 224: 49 patches of 32x32 + CLS, width 64, 2 blocks, MLP 256, proj 64 -> 64.
    tokens, width = 50, 64
    conv = 49 * (3 * 32 * 32) * width * 2
    block = (tokens * width * 3 * width + tokens * width * width) * 2  # qkv, out projection
    block += 2 * tokens * tokens * width * 2  # q·k and attention·v
    block += 2 * tokens * width * 4 * width * 2  # MLP
    visual = conv + 2 * block + width * 64 * 2
    for prompt in ('fixed', 'composed'):
        assert result['flops'][prompt]['modules']['CLIPViT.visual'] == visual
    fixed, composed = result['flops']['fixed'], result['flops']['composed']
    assert composed['total'] > fixed['total'] and 'PromptComposer' in composed['modules']
    assert 'FLOPs of one 224x224 image, fixed prompt' in printed
    assert f'{rows["total"]["total"]:,}' in printed
