"""Write the 11k Hands protocol splits as CSV files for inspection and print counts per aspect.

    python tools/prepare_11k.py DATA_ROOT --out OUT_DIR [--aspects 'dorsal right' ...]
        [--num-splits 10] [--seed 0] [--gallery own|all_aspects] [--train-id-rule published|half]

Writes ``train.csv``, ``val.csv`` (with ``is_query``) and ``test_split{k}_query.csv`` /
``test_split{k}_gallery.csv`` with columns ``path,pid,camid,aspect``; paths are relative to
DATA_ROOT and pids are the raw 11k ids (distractors offset), so ``CSVDataset`` reads them back.
Each aspect follows its own protocol; the rows of all requested aspects share the files.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tabulate import tabulate  # noqa: E402

from promptsg.datasets.hands_11k import ASPECTS, GALLERIES, TRAIN_ID_RULES, Hands11k  # noqa: E402
from promptsg.errors import PromptSGError  # noqa: E402

COLUMNS = ('path', 'pid', 'camid', 'aspect')


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('data_root', help='folder with HandInfo.csv and Hands/')
    parser.add_argument('--out', required=True, help='folder for the CSV files')
    parser.add_argument('--aspects', nargs='+', default=list(ASPECTS), choices=ASPECTS)
    parser.add_argument('--num-splits', type=int, default=10)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--gallery', default='own', choices=GALLERIES)
    parser.add_argument('--train-id-rule', default='published', choices=TRAIN_ID_RULES)
    return parser.parse_args(argv)


def build(args: argparse.Namespace, aspect: str, split: str) -> Hands11k:
    return Hands11k(
        args.data_root,
        split=split,
        aspects=aspect,
        num_splits=args.num_splits,
        seed=args.seed,
        gallery=args.gallery,
        train_id_rule=args.train_id_rule,
        relabel=False,
    )


def rows(dataset: Hands11k, indices: list[int] | None = None) -> list[dict]:
    """CSV rows of the samples at ``indices`` (all when ``None``)."""
    data = dataset.data_list
    picked = range(len(data)) if indices is None else indices
    return [
        dict(
            path=os.path.relpath(data[i]['img_path'], dataset.data_root),
            pid=data[i]['pid'],
            camid=data[i]['camid'],
            aspect=data[i]['aspect'],
            is_query=int(data[i].get('is_query', False)),
        )
        for i in picked
    ]


def span(values: list[int]) -> str:
    return str(values[0]) if min(values) == max(values) else f'{min(values)}-{max(values)}'


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        files: dict[str, list[dict]] = {}
        table = []
        for aspect in dict.fromkeys(args.aspects):
            train, val, test = (build(args, aspect, s) for s in ('train', 'val', 'test'))
            files.setdefault('train.csv', []).extend(rows(train))
            files.setdefault('val.csv', []).extend(rows(val))
            splits = test.metainfo['splits']
            for k, split in enumerate(splits):
                for part in ('query', 'gallery'):
                    name = f'test_split{k}_{part}.csv'
                    files.setdefault(name, []).extend(rows(test, split[part]))
            table.append(
                [
                    aspect,
                    train.metainfo['num_classes'],
                    len(train),
                    sum(s['is_query'] for s in val.data_list),
                    len({s['pid'] for s in test.data_list if s['aspect'] == aspect}),
                    span([len(s['gallery']) for s in splits]),
                    span([len(s['query']) for s in splits]),
                ]
            )
    except PromptSGError as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    os.makedirs(args.out, exist_ok=True)
    for name, content in files.items():
        fields = COLUMNS + (('is_query',) if name == 'val.csv' else ())
        with open(os.path.join(args.out, name), 'w', newline='') as f:
            writer = csv.DictWriter(f, fieldnames=fields, extrasaction='ignore')
            writer.writeheader()
            writer.writerows(content)
    headers = ['aspect', 'train ids', 'train images', 'val queries', 'test ids']
    headers += [f'gallery/split ({args.gallery})', 'query/split']
    print(tabulate(table, headers=headers))
    print(f'wrote {len(files)} CSV files to {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
