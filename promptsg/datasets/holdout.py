"""Validation carved from the training split only (never from test images): ``val_holdout``.

A data set with a training folder or list (Market layout, MSMT17 lists) takes one argument,
``val_holdout``, and gives the same dict to its ``train`` and ``val`` configs:

- ``None``: no validation split; ``split='train'`` is the whole training split.
- ``dict(mode='ids', size=0.1, seed=0)``: hold out identities, ``size`` a fraction (``0 < size
  < 1``, rounded) or a count (int) of the training ids, chosen by seed. ``train`` drops them;
  ``val`` holds exactly their images: per id one seeded image per camera is a query and the
  rest are the gallery, a query staying in the gallery when no image of its id from another
  camera would remain there (so the same-id-same-camera rule always leaves a match). Ids seen
  by a single camera are gallery-only; with unknown cameras each id gets one query.
- ``dict(mode='images', seed=0)``: hold out one seeded image of every training id with two or
  more images (as the hand sets do). ``train`` drops those images; ``val`` is every training
  image, the held-out ones as queries, the rest as the gallery (a query whose id has no other
  image from another camera is skipped by the metric's camera rule).
- ``dict(mode='list')`` (MSMT17 only): its own ``list_val.txt`` is the query set.

Choices are seeded per identity (see :mod:`promptsg.datasets.protocols`): the same seed gives
the same split on every machine, whatever the order of the files.
"""

from __future__ import annotations

from collections.abc import Sequence

from promptsg.datasets.protocols import hold_out_ids, hold_out_one_per_id, query_per_camera
from promptsg.errors import ConfigError

MODES = ('ids', 'images')
#: The keys each mode accepts, with their defaults.
DEFAULTS = {'ids': dict(size=0.1, seed=0), 'images': dict(seed=0), 'list': {}}


def check_val_holdout(
    val_holdout: dict | None, owner: str, modes: Sequence[str] = MODES
) -> dict | None:
    """``val_holdout`` with its defaults filled in, or a ConfigError naming the bad key."""
    if val_holdout is None:
        return None
    if not isinstance(val_holdout, dict) or val_holdout.get('mode') not in modes:
        choices = ' | '.join(f"dict(mode='{m}')" for m in modes)
        raise ConfigError(f'{owner} val_holdout={val_holdout!r} is invalid; use None | {choices}')
    mode = val_holdout['mode']
    unknown = sorted(set(val_holdout) - {'mode', *DEFAULTS[mode]})
    if unknown:
        raise ConfigError(
            f"{owner} val_holdout mode='{mode}' does not take {', '.join(unknown)}; "
            f'its keys: mode{"".join(", " + k for k in DEFAULTS[mode])}'
        )
    cfg = dict(DEFAULTS[mode], **val_holdout)
    seed = cfg.get('seed', 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f'{owner} val_holdout.seed must be a non-negative integer, got {seed!r}')
    if mode == 'ids':
        size = cfg['size']
        is_count = isinstance(size, int) and not isinstance(size, bool) and size >= 1
        is_share = isinstance(size, float) and 0 < size < 1
        if not (is_count or is_share):
            raise ConfigError(
                f'{owner} val_holdout.size must be a fraction 0 < size < 1 or a count >= 1 '
                f'of training ids, got {size!r}'
            )
    return cfg


def check_holdout_split(
    owner: str,
    split: str | None,
    val_holdout: dict | None,
    modes: Sequence[str] = MODES,
    evaluation: bool = False,
    accepts: Sequence[str | None] = ('train', 'val'),
) -> None:
    """ConfigError unless ``split`` and ``val_holdout`` go together.

    ``split='val'`` needs a holdout; a holdout needs a split in ``accepts`` (data sets with test
    splits accept them too, which ignore it, so one dict can serve every config) and a training
    set, not one with its own query/gallery (``evaluation``).
    """
    if val_holdout is None:
        if split == 'val':
            choices = ' or '.join(f"dict(mode='{m}', ...)" for m in modes)
            raise ConfigError(
                f"{owner} split='val' needs val_holdout={choices} (the same in the train "
                'config): validation is carved from training ids, never from test images'
            )
        return
    if evaluation:
        raise ConfigError(
            f'{owner} val_holdout carves validation from a training set; this one has its own '
            'query/gallery'
        )
    if split not in accepts:
        raise ConfigError(f"{owner} val_holdout needs split='train' or split='val', got {split!r}")


def split_train_val(samples: list[dict], val_holdout: dict, split: str, owner: str) -> list[dict]:
    """The ``'train'`` or ``'val'`` part of the training ``samples`` under ``val_holdout``.

    ``samples`` carry ``img_path``, raw ``pid`` and ``camid``; the ``val`` samples get
    ``is_query``. A holdout that leaves no training id or no validation query is a ConfigError.
    """
    pids = [s['pid'] for s in samples]
    keys = [s['img_path'] for s in samples]
    ids = sorted(set(pids))
    if val_holdout['mode'] == 'ids':
        size = val_holdout['size']
        count = size if isinstance(size, int) else round(size * len(ids))
        if count < 1:
            raise ConfigError(
                f'{owner} val_holdout.size={size} of {len(ids)} training ids holds out no id; '
                'raise size'
            )
        if count >= len(ids):
            raise ConfigError(
                f'{owner} val_holdout.size={size} holds out {count} of {len(ids)} training ids '
                'and leaves no training id; lower size'
            )
        held = set(hold_out_ids(ids, count, val_holdout['seed']))
        if split == 'train':
            return [s for s in samples if s['pid'] not in held]
        val = [s for s in samples if s['pid'] in held]
        query = query_per_camera(
            [s['pid'] for s in val],
            [s.get('camid', -1) for s in val],
            val_holdout['seed'],
            keys=[s['img_path'] for s in val],
        )
        return _flag_queries(val, query, owner, f'{count} held-out ids')
    kept, held_out = hold_out_one_per_id(pids, val_holdout['seed'], keys=keys)
    if split == 'train':
        return [samples[i] for i in kept]
    return _flag_queries(samples, held_out, owner, 'every training id has a single image')


def _flag_queries(samples: list[dict], query: list[int], owner: str, what: str) -> list[dict]:
    if not query:
        raise ConfigError(
            f'{owner} val_holdout gives no validation query ({what}; a query needs another '
            'image of its id, from another camera when cameras are known)'
        )
    query = set(query)
    return [dict(s, is_query=i in query) for i, s in enumerate(samples)]


class HoldoutMixin:
    """``val_holdout`` for a generic training set (folder or CSV): ``split='train'``/``'val'``.

    Without a holdout such a set may still be a ready-made validation set (its own query and
    gallery) under any split name. Call :meth:`_init_holdout` before ``ReIDDataset.__init__``
    and return ``self._apply_holdout(samples)`` from ``load_samples``.
    """

    def _init_holdout(self, val_holdout: dict | None, split: str | None, evaluation: bool) -> None:
        owner = type(self).__name__
        self.val_holdout = check_val_holdout(val_holdout, owner)
        if self.val_holdout is not None:
            check_holdout_split(owner, split, self.val_holdout, evaluation=evaluation)

    def _apply_holdout(self, samples: list[dict]) -> list[dict]:
        if self.val_holdout is None:
            return samples
        if any('is_query' in s for s in samples):
            check_holdout_split(type(self).__name__, self.split, self.val_holdout, evaluation=True)
        return split_train_val(samples, self.val_holdout, self.split, type(self).__name__)
