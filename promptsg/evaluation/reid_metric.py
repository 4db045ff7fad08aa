"""ReIDMetric: collects retrieval features and scores them with the pure functions of
:mod:`promptsg.evaluation.functional`."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from mmengine.evaluator import BaseMetric
from mmengine.logging import MessageHub, print_log
from tabulate import tabulate

from promptsg.errors import ConfigError, DataError
from promptsg.evaluation.domains import (
    group_by_domain,
    mean_over_domains,
    record_domains,
    restrict_splits,
)
from promptsg.evaluation.functional import (
    AP_MODES,
    DISTANCE_METRICS,
    check_choice,
    multi_split_cmc_map,
)
from promptsg.registry import METRICS


@METRICS.register_module()
class ReIDMetric(BaseMetric):
    """CMC Rank-k, mAP and mINP (percentages) of query/gallery retrieval.

    ``process`` stores one record per sample of the model's predict output (``feat`` (D,),
    ``pid``, ``camid``, ``sample_idx``, ``is_query``). ``compute_metrics`` orders and
    de-duplicates the records by ``sample_idx`` (distributed collection may reorder and pad),
    then scores every split of ``dataset_meta['splits']`` (lists of sample_idx) from the same
    features and reports the mean, ``<key>_std`` and ``split<i>/<key>``; without splits the
    ``is_query`` flags define a single query/gallery split. Samples that carry a ``domain``
    (several test sets in one run) are scored per domain, see :mod:`promptsg.evaluation.domains`.

    Args:
        metric: 'cosine' or 'euclidean' distance.
        camera_filter: ignore gallery entries with the query's pid and camid (camid >= 0).
        ap: 'standard' or 'trapezoid' (the hand papers' AP); see functional.cmc_map.
        topk: CMC ranks to report as 'rank<k>'.
        rerank: False, True or a dict of k_reciprocal_rerank arguments (k1, k2, lambda_value).
        chunk_size: queries scored at once (None: about 4M distances per chunk).
    """

    default_prefix = 'reid'
    SCORE_KEYS = ('mAP', 'mINP')

    def __init__(
        self,
        metric: str = 'cosine',
        camera_filter: bool = True,
        ap: str = 'standard',
        topk: Sequence[int] = (1, 5, 10),
        rerank: bool | dict = False,
        prefix: str | None = 'reid',
        collect_device: str = 'cpu',
        chunk_size: int | None = None,
        collect_dir: str | None = None,
    ) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix, collect_dir=collect_dir)
        check_choice('metric', metric, DISTANCE_METRICS)
        check_choice('ap', ap, AP_MODES)
        topk = tuple(int(k) for k in topk)
        if not topk or min(topk) < 1:
            raise ConfigError(f'topk={topk} is not valid; give positive ranks such as (1, 5, 10)')
        if not isinstance(rerank, bool | dict):
            raise ConfigError(f'rerank={rerank!r} is not valid; give True, False or a dict')
        if chunk_size is not None and int(chunk_size) < 1:
            raise ConfigError(f'chunk_size={chunk_size} is not valid; give a positive int or None')
        self.metric = metric
        self.camera_filter = camera_filter
        self.ap = ap
        self.topk = topk
        self.rerank = rerank
        self.chunk_size = chunk_size

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        """Store one record per predicted sample, its feature (D,) moved to the CPU."""
        domains = _batch_domains(data_batch)
        for sample in data_samples:
            record = {
                'feat': torch.as_tensor(sample['feat']).detach().cpu().float().reshape(-1),
                'pid': int(sample['pid']),
                'camid': int(sample['camid']),
                'sample_idx': int(sample['sample_idx']),
                'is_query': bool(sample['is_query']),
            }
            domain = sample.get('domain') or domains.get(record['sample_idx'])
            if domain:
                record['domain'] = str(domain)
            self.results.append(record)

    def _splits(self, records: list[dict]) -> list[dict]:
        """Splits as row indices into ``records`` (sorted by sample_idx)."""
        meta_splits = (self.dataset_meta or {}).get('splits')
        if not meta_splits:
            query = [i for i, r in enumerate(records) if r['is_query']]
            gallery = [i for i, r in enumerate(records) if not r['is_query']]
            if not query or not gallery:
                raise DataError(
                    f'evaluation needs queries and gallery images; got {len(query)} queries '
                    f'and {len(gallery)} gallery images (is_query flags)'
                )
            return [{'query': query, 'gallery': gallery}]
        row = {r['sample_idx']: i for i, r in enumerate(records)}
        splits = []
        for n, split in enumerate(meta_splits):
            rows = {}
            for key in ('query', 'gallery'):
                ids = list(split.get(key, []))
                if not ids:
                    raise DataError(f"dataset_meta['splits'][{n}]['{key}'] is empty")
                missing = [s for s in ids if s not in row]
                if missing:
                    raise DataError(
                        f"dataset_meta['splits'][{n}]['{key}'] names sample_idx {missing[:5]} "
                        'that were not evaluated'
                    )
                rows[key] = [row[s] for s in ids]
            splits.append(rows)
        return splits

    def compute_metrics(self, results: list) -> dict[str, float]:
        """Mean metrics over splits (flat keys 'rank1', 'mAP', ...), their std and per split."""
        unique = {}
        for record in results:
            unique.setdefault(record['sample_idx'], record)
        records = [unique[s] for s in sorted(unique)]
        if not records:
            raise DataError('no evaluation samples were collected')
        splits = self._splits(records)
        feats = torch.stack([r['feat'] for r in records])
        self._check_finite(feats)
        groups = group_by_domain(record_domains(records, (self.dataset_meta or {}).get('domains')))
        if groups is not None:
            return self._compute_per_domain(feats, records, splits, groups)
        return self._score(feats, records, splits)

    def _score(self, feats, records: list[dict], splits: list[dict]) -> dict[str, float]:
        """Flat metrics of ``splits`` (row indices into ``records``): mean, std, per split."""
        scores = multi_split_cmc_map(
            feats,
            [r['pid'] for r in records],
            [r['camid'] for r in records],
            splits,
            metric=self.metric,
            topk=self.topk,
            ap=self.ap,
            camera_filter=self.camera_filter,
            chunk_size=self.chunk_size,
            rerank=self.rerank,
        )
        keys = [f'rank{k}' for k in self.topk] + list(self.SCORE_KEYS)
        metrics = {key: scores['mean'][key] for key in keys}
        metrics['num_valid_queries'] = scores['mean']['num_valid_queries']
        if len(splits) > 1:
            metrics.update({f'{key}_std': scores['std'][key] for key in keys})
            for i, split in enumerate(scores['splits']):
                metrics.update({f'split{i}/{key}': split[key] for key in keys})
        self._log_table(scores, keys)
        return metrics

    @staticmethod
    def _check_finite(feats: torch.Tensor) -> None:
        """A DataError for NaN/inf features (N, D), naming the run's skipped updates."""
        bad = int((~torch.isfinite(feats).all(dim=1)).sum())
        if not bad:
            return
        hub = MessageHub.get_current_instance()
        skips = hub.log_scalars.get('train/nonfinite_skips')
        why = (
            f'; this run skipped {int(skips.current())} non-finite updates '
            '(optim_wrapper.nonfinite=skip): the model itself may have diverged'
            if skips is not None and skips.current()
            else ''
        )
        raise DataError(
            f'{bad} of {len(feats)} evaluation features are NaN or inf{why} '
            '(check the learning rate and the input images)'
        )

    # --- Per-domain evaluation (several test sets in one run; promptsg.evaluation.domains) ---

    def _compute_per_domain(
        self, feats, records: list[dict], splits: list[dict], groups: dict[str, list[int]]
    ) -> dict[str, float]:
        """Score each domain on its own query/gallery; flat keys = the mean over domains."""
        keys = [f'rank{k}' for k in self.topk] + list(self.SCORE_KEYS)
        per_domain = {}
        for domain, rows in groups.items():
            print_log(f'test set {domain!r}:', 'current')
            per_domain[domain] = self._score(feats, records, restrict_splits(splits, rows, domain))
        metrics = mean_over_domains(per_domain, keys)
        for domain, scores in per_domain.items():
            metrics.update({f'{domain}/{key}': value for key, value in scores.items()})
        rows = [[d] + [m[k] for k in keys] for d, m in per_domain.items()]
        rows.append([f'mean of {len(rows)}'] + [metrics[k] for k in keys])
        table = tabulate(rows, headers=['', *keys], floatfmt='.2f')
        print_log(f'ReID per test set (percent):\n{table}', 'current')
        return metrics

    def _log_table(self, scores: dict, keys: list[str]) -> None:
        rows = [[f'split{i}'] + [s[k] for k in keys] for i, s in enumerate(scores['splits'])]
        if len(rows) > 1:
            rows.append(['mean'] + [scores['mean'][k] for k in keys])
            rows.append(['std'] + [scores['std'][k] for k in keys])
        table = tabulate(rows, headers=['', *keys], floatfmt='.2f')
        print_log(f'ReID {self.metric} distance, {self.ap} AP (percent):\n{table}', 'current')


def _batch_domains(data_batch) -> dict[int, str]:
    """``{sample_idx: domain}`` from a collated batch's data samples (empty without domains)."""
    samples = data_batch.get('data_samples') if isinstance(data_batch, dict) else None
    if not isinstance(samples, dict) or not samples.get('domain'):
        return {}
    return {
        int(idx): str(domain)
        for idx, domain in zip(
            torch.as_tensor(samples['sample_idx']).tolist(), samples['domain'], strict=True
        )
    }
