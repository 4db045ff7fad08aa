"""Print a config fully resolved: ``_base_`` files merged, ``--data-root``/``--pretrained`` and
``--cfg-options`` applied, promptsg's defaults filled in (``promptsg.engine.config.load_config``).

    python tools/misc/print_config.py CONFIG [--cfg-options KEY=VALUE ...] [--out resolved.py]

The output is itself a config file: ``--out`` writes it, and ``tools/train.py`` accepts it.
"""

import argparse
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from promptsg.engine.cli import run_cli  # noqa: E402
from promptsg.engine.config import DictAction, fill_num_classes, load_config  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Print the fully resolved config')
    parser.add_argument('config', help='config file')
    parser.add_argument('--data-root', help="set every data loader's dataset.data_root")
    parser.add_argument(
        '--pretrained', help='CLIP weights: an open_clip tag or a local .pt/.bin/.safetensors file'
    )
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config keys')
    parser.add_argument(
        '--num-classes',
        action='store_true',
        help='also fill model.num_classes from the training set, as tools/train.py does',
    )
    parser.add_argument('--out', help='write the resolved config to this .py file too')
    return parser.parse_args(argv)


def main(argv=None) -> str:
    args = parse_args(argv)
    cfg = load_config(args.config, args.cfg_options, args.data_root, args.pretrained)
    if args.num_classes:
        fill_num_classes(cfg)
    text = cfg.pretty_text
    print(text)
    if args.out:
        os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
        with open(args.out, 'w', encoding='utf-8') as f:
            f.write(text)
        print(f'# written to {args.out}', file=sys.stderr)
    return text


if __name__ == '__main__':
    run_cli(main)
