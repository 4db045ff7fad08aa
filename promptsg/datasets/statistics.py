"""The statistics table every data set logs at build time (ids / images / cameras per subset).

Users paste it to check their set-up, as with fast-reid's and torchreid's tables.
"""

from __future__ import annotations

from collections.abc import Sequence

from tabulate import tabulate

HEADERS = ('subset', 'ids', 'images', 'cameras')


def dataset_statistics(dataset) -> list[dict]:
    """One row per subset of a built data set: ``dict(subset, ids, images, cameras)``.

    An evaluation set (some samples have ``is_query=True``) gives a ``query`` and a ``gallery`` row
    (``<split>/query``, ``<split>/gallery`` when the split is named, e.g. ``val/query``); any
    other set gives one row named after its split (``'all'`` without one). A concatenation
    (``datasets`` attribute) gives its members' rows prefixed by their names, then a total.
    ``cameras`` counts camera ids ``>= 0``; ``'-'`` when the cameras are unknown.
    """
    members = getattr(dataset, 'datasets', None)
    if members:
        rows = []
        for name, member in zip(dataset.names, members):
            rows.extend(dict(r, subset=f'{name}/{r["subset"]}') for r in dataset_statistics(member))
        rows.extend(_rows(dataset.data_list, 'total'))
        return rows
    return _rows(dataset.data_list, getattr(dataset, 'split', None))


def _rows(samples: Sequence[dict], split: str | None) -> list[dict]:
    if not any(s.get('is_query') for s in samples):
        return [_row(split or 'all', samples)]
    prefix = f'{split}/' if split not in (None, 'test', 'query', 'gallery') else ''
    query = [s for s in samples if s.get('is_query')]
    gallery = [s for s in samples if not s.get('is_query')]
    rows = [_row(f'{prefix}query', query), _row(f'{prefix}gallery', gallery)]
    return [r for r in rows if r['images']]


def _row(subset: str, samples: Sequence[dict]) -> dict:
    cameras = {s['camid'] for s in samples if s.get('camid', -1) >= 0}
    return dict(
        subset=subset,
        ids=len({s['pid'] for s in samples}),
        images=len(samples),
        cameras=len(cameras) if cameras else '-',
    )


def format_statistics(name: str, rows: Sequence[dict]) -> str:
    """``rows`` of :func:`dataset_statistics` as a titled table, e.g.::

    Market1501 (train) statistics:
    subset      ids    images  cameras
    --------  -----  --------  ---------
    train       751     12936  6
    """
    table = tabulate(
        [[r[h] for h in HEADERS] for r in rows],
        headers=HEADERS,
        colalign=('left',) + ('right',) * 3,
    )
    return f'{name} statistics:\n{table}'
