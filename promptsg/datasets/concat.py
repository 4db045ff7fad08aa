"""Several ReID data sets as one: joint training, or several test sets in one evaluation."""

from __future__ import annotations

from collections.abc import Sequence

from promptsg.datasets.base import ReIDDataset
from promptsg.errors import ConfigError
from promptsg.registry import DATASETS


@DATASETS.register_module()
class ConcatReIDDataset(ReIDDataset):
    """The samples of ``datasets`` one after another, each tagged with its ``domain``.

    With ``offset=True`` member ``i``'s pids are shifted by the pid range of the members before
    it (``max pid + 1`` of each; a training member's relabelled pids are ``0..n-1``) and its
    known camera ids (``>= 0``) likewise by their camera range, so identities and cameras of
    different sets never collide; ``metainfo['num_classes']`` is then the total. With
    ``offset=False`` pids and cameras are kept, and two members sharing a pid is a ConfigError.

    Each sample carries ``domain``, its member's ``name`` (default: the member's class name
    lower-cased, e.g. ``'market1501'``; set ``name=`` in a member config to choose it); names
    must be unique. ``PackReIDInputs`` copies it into the data sample, and
    ``metainfo['domains']`` maps each name to its ``[start, stop)`` range of ``sample_idx`` so a
    metric can score each test set on its own. Members with Monte-Carlo ``splits`` (hands) get
    them shifted to the concatenated positions; a member without splits contributes its
    ``is_query`` flags to every split; members with different split counts are an error.

    All members must be training sets or all evaluation sets (``test_mode``). The members'
    own pipelines are not used: give ``pipeline`` here, once for all members.

    Args:
        datasets: member configs (``dict(type=..., ...)``) or built data sets, at least one.
        pipeline: transforms applied to every sample.
        offset: shift pids and cameras per member (see above).
    """

    def __init__(
        self,
        datasets: Sequence[dict | ReIDDataset],
        pipeline: Sequence = (),
        offset: bool = True,
        name: str | None = None,
        metainfo: dict | None = None,
        lazy_init: bool = False,
    ) -> None:
        if not datasets:
            raise ConfigError('ConcatReIDDataset needs at least one data set in datasets=[...]')
        for i, member in enumerate(datasets):
            if isinstance(member, dict) and member.get('pipeline'):
                raise ConfigError(
                    f'ConcatReIDDataset datasets[{i}] has a pipeline; give the pipeline to '
                    'ConcatReIDDataset (one for all members)'
                )
        self.datasets = [DATASETS.build(d) if isinstance(d, dict) else d for d in datasets]
        self.names = [getattr(d, 'name', type(d).__name__.lower()) for d in self.datasets]
        repeated = sorted({n for n in self.names if self.names.count(n) > 1})
        if repeated:
            raise ConfigError(
                f'ConcatReIDDataset members share the name {", ".join(map(repr, repeated))}; '
                'give each member its own name=...'
            )
        modes = {bool(d.test_mode) for d in self.datasets}
        if len(modes) > 1:
            raise ConfigError(
                'ConcatReIDDataset mixes training and evaluation sets (test_mode '
                f'{[bool(d.test_mode) for d in self.datasets]}); concatenate one kind'
            )
        self.offset = offset
        super().__init__(
            pipeline=pipeline,
            relabel=False,
            test_mode=modes.pop(),
            metainfo=metainfo,
            lazy_init=lazy_init,
            name=name,
        )

    def load_data_list(self) -> list[dict]:
        samples, domains, aspects = [], {}, set()
        pid_shift = cam_shift = 0
        seen: dict[int, str] = {}
        for name, member in zip(self.names, self.datasets):
            member.full_init()
            start = len(samples)
            for s in member.data_list:
                s = dict(s, domain=name)
                if self.offset:
                    s['pid'] += pid_shift
                    if s.get('camid', -1) >= 0:
                        s['camid'] += cam_shift
                samples.append(s)
            part = samples[start:]
            pids = {s['pid'] for s in part}
            if not self.offset:
                clash = sorted(p for p in pids if p in seen)
                if clash:
                    raise ConfigError(
                        f"ConcatReIDDataset: '{seen[clash[0]]}' and '{name}' share pids "
                        f'(e.g. {", ".join(map(str, clash[:3]))}); set offset=True so they '
                        'never collide'
                    )
                seen.update((p, name) for p in pids)
            pid_shift = max(pid_shift, max(pids) + 1)
            cam_shift = max([cam_shift] + [s['camid'] + 1 for s in part if s.get('camid', -1) >= 0])
            domains[name] = [start, len(samples)]
            aspects.update(member.metainfo.get('aspects') or ())
        self._metainfo['num_classes'] = len({s['pid'] for s in samples})
        self._metainfo['domains'] = domains
        if aspects:
            self._metainfo['aspects'] = sorted(aspects)
        splits = self._splits(domains)
        if splits:
            self._metainfo['splits'] = splits
        return samples

    def _splits(self, domains: dict[str, list[int]]) -> list[dict] | None:
        """Members' Monte-Carlo splits shifted to concatenated positions (None without any)."""
        counts = {len(d.metainfo.get('splits') or ()) for d in self.datasets} - {0}
        if not counts:
            return None
        if len(counts) > 1:
            raise ConfigError(
                'ConcatReIDDataset members have different numbers of Monte-Carlo splits '
                f'{sorted(counts)}; give them the same num_splits'
            )
        splits = [{'query': [], 'gallery': []} for _ in range(counts.pop())]
        for name, member in zip(self.names, self.datasets):
            start = domains[name][0]
            own = member.metainfo.get('splits')
            for k, split in enumerate(splits):
                if own:
                    query, gallery = own[k]['query'], own[k]['gallery']
                else:
                    flags = [bool(s.get('is_query')) for s in member.data_list]
                    query = [i for i, q in enumerate(flags) if q]
                    gallery = [i for i, q in enumerate(flags) if not q]
                split['query'] += [start + i for i in query]
                split['gallery'] += [start + i for i in gallery]
        return splits
