"""Regenerate a chronology's artefacts from what actually ran.

``python tools/chronology.py report configs/vit_b16 [--work-dirs DIR] [--out-dir result_logs]``
writes the remarks CSV, the results CSV, the markdown table and the plots
(see ``promptsg.chronology.report``). ``python tools/chronology.py readme`` regenerates
``configs/README.md`` from the version configs.
"""

import argparse
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)

import promptsg.registry  # noqa: E402,F401  (a broken import shows its real traceback)
from promptsg.chronology.readme import write_readme  # noqa: E402
from promptsg.chronology.report import write_artefacts  # noqa: E402
from promptsg.engine.cli import run_cli  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Chronology artefacts from configs and work dirs')
    commands = parser.add_subparsers(dest='command', required=True)
    report = commands.add_parser('report', help='CSVs, markdown table and plots')
    report.add_argument('configs', help="configs folder of v1.py, v2.py, ... or a name: 'vit_b16'")
    report.add_argument(
        '--work-dirs',
        help="folder of the versions' work dirs (default: work_dirs/chronology/<name>)",
    )
    report.add_argument('--out-dir', default='result_logs', help='where the artefacts go')
    report.add_argument('--name', help='name in the file names (default: the folder name)')
    readme = commands.add_parser('readme', help='regenerate configs/README.md')
    readme.add_argument('--configs-root', default=osp.join(ROOT, 'configs'))
    readme.add_argument('--out', help='default: <configs-root>/README.md')
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.command == 'readme':
        out = args.out or osp.join(args.configs_root, 'README.md')
        write_readme(args.configs_root, out)
        print(out)
        return
    configs = args.configs if osp.isdir(args.configs) else osp.join(ROOT, 'configs', args.configs)
    name = args.name or osp.basename(osp.normpath(configs))
    work_dirs = args.work_dirs or osp.join('work_dirs', 'chronology', name)
    for kind, path in write_artefacts(configs, work_dirs, args.out_dir, name).items():
        print(f'{kind}: {path}')


if __name__ == '__main__':
    run_cli(main)
