"""tools/test.py --rerank / --aqe on the tiny synthetic quickstart config, in process."""

import importlib.util
import json
from pathlib import Path

import pytest
import torch
from mmengine.config import Config

from promptsg.apis import ReIDInferencer
from promptsg.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = ROOT / 'configs' / 'quickstart' / 'synthetic_promptsg.py'
TINY = ['model.num_classes=8'] + [
    f'test_dataloader.dataset.{key}={value}'
    for key, value in (('num_train_ids', 8), ('num_test_ids', 4), ('images_per_id', 4))
]


def load_test_tool():
    spec = importlib.util.spec_from_file_location('promptsg_tool_test', ROOT / 'tools' / 'test.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_flags_set_every_reid_metric_and_keep_other_options():
    tool = load_test_tool()
    cfg = Config(
        dict(test_evaluator=[dict(type='ReIDMetric', rerank=dict(k1=7)), dict(type='Other')])
    )
    tool.set_retrieval_options(cfg, 'dense', 0.0)
    metric = cfg.test_evaluator[0]
    assert metric['rerank'] == dict(k1=7, mode='dense')
    assert metric['query_expansion'] == dict(alpha=0.0)
    assert 'rerank' not in cfg.test_evaluator[1]
    with pytest.raises(ConfigError, match='ReIDMetric'):
        tool.set_retrieval_options(Config(dict(test_evaluator=dict(type='Other'))), 'sparse', None)
    with pytest.raises(SystemExit):
        tool.parse_args(['cfg.py', 'ckpt.pth', '--rerank', 'full'])


@pytest.mark.slow
def test_rerank_and_aqe_change_the_tested_scores(tmp_path):
    tool = load_test_tool()
    torch.manual_seed(0)
    cfg = Config.fromfile(str(QUICKSTART))
    cfg.merge_from_dict({'model.num_classes': 8})
    checkpoint = tmp_path / 'untrained.pth'
    torch.save({'state_dict': ReIDInferencer(cfg).model.state_dict()}, checkpoint)
    scores = {}
    for name, flags in (('plain', []), ('rerank', ['--rerank', 'sparse', '--aqe', '3'])):
        work_dir = tmp_path / name
        argv = [str(QUICKSTART), str(checkpoint), '--work-dir', str(work_dir), *flags]
        tool.main([*argv, '--cfg-options', *TINY])
        scores[name] = json.loads((work_dir / 'test_metrics.json').read_text())
    assert set(scores['plain']) == set(scores['rerank'])
    assert scores['plain']['reid/mAP'] != pytest.approx(scores['rerank']['reid/mAP'], abs=1e-6)
