"""The base class of every ReID data set: a list of samples with pid, camid and query flag."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

from mmengine.dataset import BaseDataset
from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from promptsg.errors import ConfigError, DataError
from promptsg.registry import TRANSFORMS

#: Values of ``check_images``: header check (True, 'header'), full decode ('full'), none (False).
CHECK_IMAGES = (True, 'header', 'full', False)
#: Values of ``duplicates``.
DUPLICATES = ('error', 'drop')
#: A full decode of more images than this shows a progress bar.
PROGRESS_FROM = 2000


class ReIDDataset(BaseDataset):
    """An mmengine ``BaseDataset`` of ReID samples (see ``docs/architecture.md``).

    Subclasses implement :meth:`load_samples`, returning dicts with ``img_path`` (or ``img``),
    ``pid``, ``camid`` and optionally ``is_query``/``aspect``. This class then

    - checks that ``data_root`` exists and that every listed image is on disk and readable (a
      missing or unreadable image is a :class:`DataError` naming the count and the first few,
      unless ``skip_missing=True``);
    - relabels pids to ``0..num_classes-1`` when ``relabel=True`` (training sets) and records
      ``num_classes`` and ``aspects`` in ``metainfo``.

    Args:
        data_root: folder of the data set.
        pipeline: transforms (configs or callables) applied to each sample; configs are built
            from promptsg's ``TRANSFORMS`` so they resolve with or without a default scope.
        split: which part of the data set (one of the class's ``splits``, when it has them);
            sets the defaults of ``relabel`` (True for 'train') and ``test_mode`` (True for
            any other split).
        relabel: map pids to contiguous labels (training); evaluation sets keep raw pids.
        skip_missing: drop listed images that are absent or unreadable (with a logged count)
            instead of failing.
        check_images: before training, ``True`` / ``'header'`` opens every image's header (a
            file that is not an image fails now, not mid-epoch); ``'full'`` decodes every image
            (also catches truncated files; slower); ``False`` checks presence only.
        test_mode: mmengine's flag; evaluation sets set it.
        duplicates: an image listed twice. ``'error'``: in an evaluation set (where it may be
            its own query and gallery match) a DataError naming the rows; in a training set a
            logged warning. ``'drop'``: keep the first listing (a query before a gallery one).
        name: the data set's name in logs and in a concatenation's ``domain`` (default: the
            class name lower-cased, e.g. ``'market1501'``).

    Once built, the data set logs its statistics table (ids / images / cameras per subset, see
    :mod:`promptsg.datasets.statistics`).
    """

    #: The valid ``split`` values of a subclass (empty: the data set has no splits).
    splits: tuple[str, ...] = ()

    def __init__(
        self,
        data_root: str = '',
        pipeline: Sequence = (),
        split: str | None = None,
        relabel: bool | None = None,
        skip_missing: bool = False,
        check_images: bool | str = True,
        test_mode: bool | None = None,
        metainfo: dict | None = None,
        lazy_init: bool = False,
        name: str | None = None,
        duplicates: str = 'error',
        **kwargs,
    ) -> None:
        self.name = name or type(self).__name__.lower()
        if duplicates not in DUPLICATES:
            raise ConfigError(f'duplicates={duplicates!r} is not valid; choose one of {DUPLICATES}')
        self.duplicates = duplicates
        if self.splits and split not in self.splits:
            raise ConfigError(
                f"{type(self).__name__} split '{split}' is not one of {list(self.splits)}"
            )
        self.split = split
        self.relabel = split == 'train' if relabel is None else relabel
        if test_mode is None:
            test_mode = split not in (None, 'train')
        if check_images not in CHECK_IMAGES:
            raise ConfigError(
                f'check_images={check_images!r} is not valid; choose one of: '
                + ', '.join(repr(c) for c in CHECK_IMAGES)
            )
        self.skip_missing = skip_missing
        self.check_images = check_images
        if data_root and not os.path.isdir(data_root):
            raise DataError(f'data_root does not exist or is not a folder: {data_root}')
        super().__init__(
            data_root=data_root,
            pipeline=[TRANSFORMS.build(t) if isinstance(t, dict) else t for t in pipeline],
            test_mode=test_mode,
            metainfo=metainfo,
            lazy_init=lazy_init,
            serialize_data=False,
            **kwargs,
        )

    def full_init(self) -> None:
        """Load the samples (mmengine's ``full_init``), then log the statistics table once."""
        if self._fully_initialized:
            return
        super().full_init()
        self.log_statistics()

    def log_statistics(self) -> None:
        """Log :func:`~promptsg.datasets.statistics.format_statistics` of this data set."""
        from mmengine.logging import print_log

        from promptsg.datasets.statistics import dataset_statistics, format_statistics

        title = f'{type(self).__name__} ({self.split})' if self.split else type(self).__name__
        print_log(format_statistics(title, dataset_statistics(self)), logger='current')

    def load_samples(self) -> list[dict]:
        """Return the raw samples of this data set (subclasses)."""
        raise NotImplementedError

    def load_data_list(self) -> list[dict]:
        samples = self.load_samples()
        samples = self.drop_duplicates(samples)
        samples = self._check_files(samples)
        if not samples:
            raise DataError(f'{type(self).__name__} found no images under {self.data_root!r}')
        for s in samples:
            s.setdefault('camid', -1)
        if self.relabel:
            pid2label = {pid: i for i, pid in enumerate(sorted({s['pid'] for s in samples}))}
            for s in samples:
                s['pid'] = pid2label[s['pid']]
        self._metainfo['num_classes'] = len({s['pid'] for s in samples})
        aspects = sorted({s['aspect'] for s in samples if 'aspect' in s})
        if aspects:
            self._metainfo.setdefault('aspects', aspects)
        return samples

    def _check_files(self, samples: list[dict]) -> list[dict]:
        """Drop nothing silently: missing or unreadable listed images are a DataError.

        With ``skip_missing=True`` they are dropped with a logged count instead.
        """
        paths = [s['img_path'] for s in samples if 'img_path' in s]
        missing = [p for p in paths if not os.path.isfile(p)]
        gone = set(missing)
        unreadable = []
        if self.check_images:
            decode = self.check_images == 'full'
            todo = [p for p in paths if p not in gone]
            if decode and len(todo) > PROGRESS_FROM:
                todo = tqdm(todo, desc='decoding images', unit='img', leave=False)
            unreadable = [p for p in todo if not _readable_image(p, decode)]
        problems = [(missing, 'missing'), (unreadable, 'not readable as images')]
        problems = [(found, what) for found, what in problems if found]
        if not problems:
            return samples
        if not self.skip_missing:
            found, what = problems[0]
            why = '' if found is missing else f' ({image_problem(found[0], True)})'
            raise DataError(
                f'{len(found)} listed image(s) are {what} under {self.data_root!r}, e.g. '
                f'{", ".join(os.path.basename(p) for p in found[:3])}{why} '
                '(set skip_missing=True to drop them)'
            )
        from mmengine.logging import print_log

        for found, what in problems:
            print_log(f'skipping {len(found)} image(s) {what}, e.g. {found[0]}', logger='current')
        gone.update(unreadable)
        return [s for s in samples if s.get('img_path') not in gone]

    def drop_duplicates(self, samples: list[dict], key: str = 'img_path') -> list[dict]:
        """Apply the ``duplicates`` policy to samples sharing ``key`` (see the class doc);
        samples may name their source in ``row`` (e.g. ``'list.csv line 7'``)."""
        order = sorted(range(len(samples)), key=lambda i: not samples[i].get('is_query', False))
        first: dict = {}
        repeats = []
        for i in order:
            value = samples[i].get(key)
            if value is None:
                continue
            if value in first:
                repeats.append((first[value], i))
            else:
                first[value] = i
        if not repeats:
            return samples

        def where(i: int) -> str:
            role = {True: 'query', False: 'gallery'}.get(samples[i].get('is_query'))
            row = samples[i].get('row')
            if role and row:
                return f'{role} ({row})'
            return role or row or 'a row'

        shown = '; '.join(
            f'{os.path.basename(str(samples[a][key]))} as {where(a)} and {where(b)}'
            for a, b in repeats[:3]
        )
        what = f'{len(repeats)} image(s) listed twice in {type(self).__name__} (split {self.split})'
        if self.duplicates == 'error' and self.test_mode:
            raise DataError(
                f'{what}: {shown}; an image in both query and gallery is its own match (remove '
                "the rows, or set duplicates='drop' to keep only the first listing)"
            )
        from mmengine.logging import print_log

        action = 'dropped the repeats' if self.duplicates == 'drop' else 'kept'
        print_log(f'{what}: {shown}; {action}', logger='current', level=logging.WARNING)
        if self.duplicates != 'drop':
            return samples
        gone = {b for _, b in repeats}
        return [s for i, s in enumerate(samples) if i not in gone]

    @property
    def pids(self) -> list[int]:
        """The pid of every sample, in order (used by the P×K sampler)."""
        self.full_init()
        return [s['pid'] for s in self.data_list]


def _readable_image(path: str, decode: bool = False) -> bool:
    """Whether PIL can read the image's header (cheap), or with ``decode`` all its pixels."""
    return image_problem(path, decode) is None


def image_problem(path: str, decode: bool = False) -> str | None:
    """Why PIL cannot read the image (header, or with ``decode`` every pixel); None if it can.

    An image over PIL's decompression-bomb limit (``PIL.Image.MAX_IMAGE_PIXELS``) is refused
    with that reason, never opened.
    """
    try:
        with Image.open(path) as im:
            if decode:
                im.load()
            else:
                im.size  # noqa: B018
        return None
    except Image.DecompressionBombError as e:
        return f"over PIL's decompression-bomb limit ({e})"
    except (OSError, UnidentifiedImageError, ValueError) as e:
        return str(e).split('\n')[0] or type(e).__name__
