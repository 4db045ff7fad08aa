"""Plot logged scalars and summarise the time per iteration, from mmengine's JSON logs.

    python tools/analysis_tools/analyze_logs.py plot WORK_DIR [WORK_DIR ...] \\
        --keys loss 'loss_*' 'lr_*' reid/mAP reid/rank1 --out curves.png
    python tools/analysis_tools/analyze_logs.py time WORK_DIR [WORK_DIR ...]
    python tools/analysis_tools/analyze_logs.py keys WORK_DIR

WORK_DIR is a training work dir (its runs joined, a resumed run continuing the curve), one run
folder, or a ``scalars.json`` file. Keys are names or globs; training scalars are drawn against
the iteration, validation metrics against the epoch.
"""

import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from tabulate import tabulate  # noqa: E402

from promptsg.analysis.logs import match_keys, plot_scalars, read_run_log, time_summary  # noqa: E402
from promptsg.engine.cli import run_cli  # noqa: E402
from promptsg.errors import ConfigError  # noqa: E402

DEFAULT_KEYS = ['loss', 'reid/mAP', 'reid/rank1']


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Analyse mmengine JSON logs of promptsg runs')
    sub = parser.add_subparsers(dest='command', required=True)
    plot = sub.add_parser('plot', help='plot logged scalars to a PNG')
    plot.add_argument('logs', nargs='+', help='work dirs, run folders or scalars.json files')
    plot.add_argument(
        '--keys', nargs='+', default=DEFAULT_KEYS, help=f'names or globs (default {DEFAULT_KEYS})'
    )
    plot.add_argument('--legend', nargs='+', help='one name per log (default: folder names)')
    plot.add_argument('--out', default='curves.png', help='PNG to write')
    time = sub.add_parser('time', help='time per training iteration')
    time.add_argument('logs', nargs='+', help='work dirs, run folders or scalars.json files')
    keys = sub.add_parser('keys', help='list the logged scalars')
    keys.add_argument('logs', nargs='+', help='work dirs, run folders or scalars.json files')
    return parser.parse_args(argv)


def _names(paths: list[str], legend: list[str] | None) -> list[str]:
    if legend is not None:
        if len(legend) != len(paths):
            raise ConfigError(f'--legend has {len(legend)} names for {len(paths)} logs')
        return legend
    names = [osp.basename(osp.normpath(p)) for p in paths]
    if len(set(names)) < len(names):  # e.g. configs/vit_b16 and configs/rn50 both end in v6
        names = [osp.normpath(p) for p in paths]
    return names


def main(argv=None):
    args = parse_args(argv)
    legend = getattr(args, 'legend', None)
    logs = [read_run_log(p, n) for p, n in zip(args.logs, _names(args.logs, legend))]
    if args.command == 'keys':
        for log in logs:
            train, val = log.keys()
            print(f'{log.name}: training ({len(log.train)} records): {", ".join(train) or "-"}')
            print(f'{log.name}: validation ({len(log.val)} records): {", ".join(val) or "-"}')
        return logs
    if args.command == 'time':
        rows = [time_summary(log) for log in logs]
        columns = [
            ('log', 'name'),
            ('iters', 'iters'),
            ('s/iter', 'mean'),
            ('std', 'std'),
            ('median', 'median'),
            ('data s/iter', 'data'),
            ('slowest epoch', 'slowest_epoch'),
            ('s/iter', 'slowest'),
            ('fastest epoch', 'fastest_epoch'),
            ('s/iter', 'fastest'),
        ]
        table = [[r.get(key, '-') for _, key in columns] for r in rows]
        print(tabulate(table, headers=[h for h, _ in columns], floatfmt='.4f'))
        print('(means of the logged values, first logged iteration of each run left out)')
        return rows
    train, val = match_keys(logs, args.keys)
    path = plot_scalars(logs, train, val, args.out)
    parts = [f'{", ".join(train)} (per iteration)'] if train else []
    parts += [f'{", ".join(val)} (validation, per epoch)'] if val else []
    print(f'{len(train) + len(val)} scalars of {len(logs)} log(s): {"; ".join(parts)} -> {path}')
    return path


if __name__ == '__main__':
    run_cli(main)
