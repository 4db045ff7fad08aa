"""Run a chronology's versions in order: ``python tools/run_chronology.py vit_b16 --data-root DIR``.

Each version trains and tests in ``<work-root>/<name>/<version>``; a finished version (its work
dir holds ``test_metrics.json``) is skipped unless ``--force``. Then
``python tools/chronology.py report configs/<name>`` writes the chronology's artefacts.
"""

import argparse
import os
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)

import promptsg.registry  # noqa: E402,F401  (a broken import shows its real traceback)
from promptsg.chronology.run import run_chronology  # noqa: E402
from promptsg.engine.cli import run_cli  # noqa: E402
from promptsg.engine.config import DictAction  # noqa: E402
from promptsg.engine.runner import summary_line  # noqa: E402
from promptsg.errors import ConfigError  # noqa: E402


def configs_folder(name: str) -> str:
    """A configs folder given as a path, or by name under the repo's ``configs/``."""
    if osp.isdir(name):
        return name
    named = osp.join(ROOT, 'configs', name)
    if osp.isdir(named):
        return named
    names = sorted(d for d in os.listdir(osp.join(ROOT, 'configs')) if not d.startswith('_'))
    names = [d for d in names if osp.isfile(osp.join(ROOT, 'configs', d, 'v1.py'))]
    raise ConfigError(
        f'configs folder not found: {name} (give a folder of v1.py, v2.py, ... or a name: '
        f'{", ".join(names)})'
    )


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Run the versions of a chronology in order')
    parser.add_argument('configs', help="configs folder of v1.py, v2.py, ... or a name: 'vit_b16'")
    parser.add_argument('--data-root', help='data folder (11k Hands: HandInfo.csv and Hands/)')
    parser.add_argument('--pretrained', help='CLIP weights: open_clip tag or local file')
    parser.add_argument(
        '--work-root',
        default='work_dirs/chronology',
        help='work dirs go to WORK_ROOT/<configs folder name>/<version>',
    )
    parser.add_argument('--versions', nargs='+', help='only these versions, e.g. v1 v2')
    parser.add_argument('--force', action='store_true', help='re-run finished versions too')
    parser.add_argument('--resume', action='store_true', help='resume unfinished versions')
    parser.add_argument('--overlay', help='a config file merged on top of every version')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config keys')
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    configs = configs_folder(args.configs)
    work_root = osp.join(args.work_root, osp.basename(osp.normpath(configs)))
    runs = run_chronology(
        configs,
        work_root,
        versions=args.versions,
        data_root=args.data_root,
        pretrained=args.pretrained,
        options=args.cfg_options,
        overlay=args.overlay,
        force=args.force,
        resume=args.resume,
    )
    for run in runs:
        print(f'{run.name} ({run.action}): {summary_line(run.metrics or {})}')


if __name__ == '__main__':
    run_cli(main)
