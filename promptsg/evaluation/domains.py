"""Per-domain evaluation: several test sets in one run, each scored on its own query/gallery.

A sample's ``domain`` is the name of the data set it came from (``ConcatReIDDataset`` sets it).
When evaluation records carry domains, :class:`~promptsg.evaluation.ReIDMetric` scores every
domain separately, queries of one domain against the gallery of the same domain only, and
reports ``<domain>/<key>`` next to the flat keys, which are then the unweighted **mean over the
domains** (``num_valid_queries``: their sum). Early stopping and best-checkpoint selection on
``reid/mAP`` therefore follow the mean of the test sets.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from promptsg.errors import DataError

#: ``split<i>`` is ReIDMetric's per-split prefix; a domain may not take that name.
SPLIT_NAME = re.compile(r'^split\d+$')


def record_domains(records: Sequence[dict], ranges: dict | None = None) -> list[str | None]:
    """The domain of each record: its own ``domain``, else the ``[start, stop)`` range of
    ``sample_idx`` that ``ranges`` (``dataset_meta['domains']`` of a ``ConcatReIDDataset``)
    gives it, else None."""
    found = [r.get('domain') or None for r in records]
    if any(found) or not ranges:
        return found
    return [
        next((name for name, (lo, hi) in ranges.items() if lo <= r['sample_idx'] < hi), None)
        for r in records
    ]


def group_by_domain(domains: Sequence[str | None]) -> dict[str, list[int]] | None:
    """Row indices per domain, domains in first-seen order; None when no row has a domain.

    Rows are evaluation records in ``sample_idx`` order, so the order is the data sets' order.
    A mix of rows with and without a domain is a :class:`DataError`.
    """
    named = [d for d in domains if d]
    if not named:
        return None
    if len(named) != len(domains):
        raise DataError(
            f'{len(domains) - len(named)} of {len(domains)} evaluation samples have no domain: '
            'either every data set of the evaluation names its domain (ConcatReIDDataset) or none'
        )
    groups: dict[str, list[int]] = {}
    for row, domain in enumerate(domains):
        if SPLIT_NAME.match(domain) or '/' in domain:
            raise DataError(f"domain name {domain!r} is not allowed (no '/', not 'split<i>')")
        groups.setdefault(domain, []).append(row)
    return groups


def restrict_splits(splits: Sequence[dict], rows: Sequence[int], domain: str) -> list[dict]:
    """Each split's query and gallery cut to ``rows`` (one domain's record rows).

    A domain left without queries or without gallery images in a split is a :class:`DataError`.
    """
    keep = set(rows)
    out = []
    for n, split in enumerate(splits):
        cut = {key: [i for i in split[key] if i in keep] for key in ('query', 'gallery')}
        for key, found in cut.items():
            if not found:
                raise DataError(
                    f"domain '{domain}' has no {key} images"
                    + (f' in split {n}' if len(splits) > 1 else '')
                    + ': every test set needs its own query and gallery'
                )
        out.append(cut)
    return out


def mean_over_domains(per_domain: dict[str, dict[str, float]], keys: Sequence[str]) -> dict:
    """Flat metrics from per-domain ones: the mean of each key, ``num_valid_queries`` summed."""
    count = len(per_domain)
    out = {key: sum(m[key] for m in per_domain.values()) / count for key in keys}
    out['num_valid_queries'] = sum(m['num_valid_queries'] for m in per_domain.values())
    return out
