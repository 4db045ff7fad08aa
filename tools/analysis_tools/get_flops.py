"""Parameters (trainable / frozen per part) and FLOPs of a config's model at its input size.

    python tools/analysis_tools/get_flops.py CONFIG [--prompt fixed composed] [--cfg-options ...]

FLOPs are those of one image's embedding (``model.embed``, eval mode), counted with
``torch.utils.flop_counter.FlopCounterMode``: matrix products, convolutions and attention (a
multiply-add is 2 FLOPs); element-wise ops and norms are not counted. A PromptSG model is
measured with each inference prompt asked for; the fixed prompt's text feature is encoded once
and cached, so its cost is left out.
"""

import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

import torch  # noqa: E402
from tabulate import tabulate  # noqa: E402

import promptsg.registry  # noqa: E402,F401  (a broken import shows its real traceback)
from promptsg.analysis.complexity import embedding_flops, parameter_rows  # noqa: E402
from promptsg.apis.inferencer import PROMPTS, ReIDInferencer  # noqa: E402
from promptsg.apis.onnx_export import input_size  # noqa: E402
from promptsg.engine.cli import run_cli  # noqa: E402
from promptsg.engine.config import DictAction, path_options  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Parameters and FLOPs of a promptsg model')
    parser.add_argument('config', help='config file')
    parser.add_argument(
        '--prompt',
        nargs='+',
        choices=PROMPTS,
        help='PromptSG inference prompt(s) to measure (default: both)',
    )
    parser.add_argument('--aspect', default='', help="words for a template's {aspect} slot")
    parser.add_argument(
        '--data-root', help="every data loader's dataset.data_root (sizes the ID head)"
    )
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config keys')
    return parser.parse_args(argv)


def _m(n: int) -> str:
    return f'{n:,}'


def _g(n: int) -> str:
    return f'{n / 1e9:.3f} G' if n >= 1e9 else f'{n / 1e6:.2f} M'


def main(argv=None) -> dict:
    args = parse_args(argv)
    torch.manual_seed(0)
    options = {**path_options(args.data_root), **(args.cfg_options or {})}
    inferencer = ReIDInferencer(args.config, cfg_options=options, aspect=args.aspect)
    model = inferencer.model
    rows = parameter_rows(model)
    print(f'{type(model).__name__} of {args.config}: parameters')
    table = [[r['part'], _m(r['trainable']), _m(r['frozen']), _m(r['total'])] for r in rows]
    print(tabulate(table, headers=['part', 'trainable', 'frozen', 'total'], stralign='right'))
    if inferencer.num_classes_from:
        print(
            f'(model.num_classes = {inferencer.cfg.model.num_classes}, from '
            f'{inferencer.num_classes_from}; --data-root sizes the head from the training set)'
        )
    size = input_size(model)
    has_prompt = 'prompt' in model.test_cfg
    prompts = args.prompt or (list(PROMPTS) if has_prompt else ['fixed'])
    result = dict(parameters=rows, flops={})
    for prompt in prompts:
        if has_prompt:
            model.test_cfg['prompt'] = prompt
        total, per_module = embedding_flops(model, size, args.aspect)
        result['flops'][prompt] = dict(total=total, modules=per_module)
        what = f', {prompt} prompt' if has_prompt else ''
        print(f'\nFLOPs of one {size[0]}x{size[1]} image{what}: {_g(total)}')
        print(tabulate([[k, _g(v)] for k, v in per_module.items()], headers=['module', 'FLOPs']))
    return result


if __name__ == '__main__':
    run_cli(main)
