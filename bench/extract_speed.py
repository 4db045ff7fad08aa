"""Extraction throughput: ``tools/test.py`` vs bare loops, and data loading with 0/2/4 workers.

    python bench/extract_speed.py --quick

The quick-start PromptSG (random init, saved as a checkpoint) is evaluated by ``tools/test.py``
(called in-process, as a user would run it) on a test set: ``../shared/data/cuhk03_mini`` when
present, else synthetic identities. A hook times extraction, from ``before_test_epoch`` to the last
``after_test_iter``: data loading, preprocessing, ``predict`` and ``ReIDMetric.process``. The bare
loops run over the same images decoded once beforehand (same model, same weights): the image
encoder alone (``backbone``, CLIP's encode_image) and the whole retrieval feature
(``model.embed``). The three are interleaved. Data loading: the test set through a DataLoader
(decode, resize, pack, collate) with each worker count, interleaved, after one warm-up pass.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import os.path as osp
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import torch  # noqa: E402
from mmengine.config import Config  # noqa: E402
from mmengine.dataset import default_collate  # noqa: E402
from mmengine.hooks import Hook  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402

from bench.harness import (  # noqa: E402
    REPO,
    add_common_args,
    check_runner_device,
    device_of,
    figure,
    interleaved,
    paired_ratio,
    ratio_figure,
    report,
    settings,
    spread,
    sync,
)
from bench.workloads import QUICKSTART, build_model, case_name, model_cfg  # noqa: E402
from promptsg.datasets.transforms import CLIP_MEAN, CLIP_STD  # noqa: E402
from promptsg.engine.cli import run_cli  # noqa: E402
from promptsg.errors import ConfigError  # noqa: E402
from promptsg.registry import DATASETS, HOOKS  # noqa: E402

BENCH = 'extract_speed'
CUHK03 = REPO.parent / 'shared' / 'data' / 'cuhk03_mini'
DATA_CHOICES = ('auto', 'cuhk03', 'synthetic')
DEFAULTS = {
    'smoke': dict(
        archs=['tiny-vit'],
        batch_size=8,
        img_size=[64, 32],
        repeats=1,
        data='synthetic',
        synthetic_ids=4,
        workers=[0, 2],
    ),
    'quick': dict(
        archs=['tiny-vit'],
        batch_size=64,
        img_size=[256, 128],
        repeats=3,
        data='auto',
        synthetic_ids=50,
        workers=[0, 2, 4],
    ),
    'full': dict(
        archs=['tiny-vit', 'tiny-rn'],
        batch_size=64,
        img_size=[256, 128],
        repeats=5,
        data='auto',
        synthetic_ids=50,
        workers=[0, 2, 4],
    ),
}


@HOOKS.register_module(force=True)
class ExtractionTimerHook(Hook):
    """Time a test run's extraction: ``before_test_epoch`` to the last ``after_test_iter``.

    Each run appends ``(images, seconds)`` to the class-level ``records``.
    """

    priority = 'LOWEST'
    records: list[tuple[int, float]] = []

    def _sync(self, runner) -> None:
        sync(next(runner.model.parameters()).device)

    def before_test_epoch(self, runner) -> None:
        self._sync(runner)
        self._images, self._start = 0, time.perf_counter()
        self._end = self._start

    def after_test_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        self._sync(runner)
        self._images += len(outputs)
        self._end = time.perf_counter()

    def after_test_epoch(self, runner, metrics=None) -> None:
        type(self).records.append((self._images, self._end - self._start))


def _load_test_tool():
    spec = importlib.util.spec_from_file_location('promptsg_test_tool', REPO / 'tools' / 'test.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def dataset_cfg(data: str, img_size: tuple[int, int], synthetic_ids: int) -> tuple[dict, str]:
    """Test-set config and its name: cuhk03_mini (Market layout) or synthetic identities."""
    if data not in DATA_CHOICES:
        raise ConfigError(f"--data '{data}' is not one of {list(DATA_CHOICES)}")
    pipeline = [
        dict(type='LoadImage'),
        dict(type='Resize', size=tuple(img_size)),
        dict(type='PackReIDInputs'),
    ]
    if data == 'cuhk03' and not CUHK03.is_dir():
        raise ConfigError(f'--data cuhk03: {CUHK03} is absent; use --data synthetic')
    if data == 'cuhk03' or (data == 'auto' and CUHK03.is_dir()):
        return (
            dict(type='Market1501', data_root=str(CUHK03), split='test', pipeline=pipeline),
            'cuhk03_mini test',
        )
    cfg = dict(
        type='SyntheticReID',
        split='test',
        num_train_ids=1,
        num_test_ids=synthetic_ids,
        images_per_id=9,
        img_size=tuple(img_size),
        seed=0,
        pipeline=pipeline,
    )
    return cfg, 'synthetic test'


def write_config(path: Path, model: dict, dataset: dict, batch_size: int) -> None:
    """A config inheriting the quick start, with this model and test set, the timer hook added."""
    hooks = [dict(h) for h in Config.fromfile(str(QUICKSTART)).get('custom_hooks', [])]
    hooks.append(dict(type='ExtractionTimerHook'))
    path.write_text(
        f'_base_ = [{str(QUICKSTART)!r}]\n'
        f'model = {dict(_delete_=True, **model)!r}\n'
        f'test_dataloader = dict(batch_size={batch_size}, num_workers=0, '
        f'dataset={dict(_delete_=True, **dataset)!r})\n'
        f'custom_hooks = {hooks!r}\n'
        "log_level = 'WARNING'\n"
    )


def decoded_batches(dataset: dict, batch_size: int) -> list[torch.Tensor]:
    """The test images run through the test pipeline once, as (B, 3, H, W) uint8 batches."""
    init_default_scope('promptsg')
    images = [sample['inputs'] for sample in DATASETS.build(dataset)]
    return [torch.stack(images[i : i + batch_size]) for i in range(0, len(images), batch_size)]


def measure(
    arch: str,
    batch_size: int,
    img_size: tuple[int, int],
    repeats: int,
    data: str,
    synthetic_ids: int,
    workers: list[int],
    device: torch.device,
    amp: bool,
) -> list[dict]:
    """Interleave tools/test.py and the bare loops, then the data loaders; return the figures."""
    test_tool = _load_test_tool()
    dataset, data_name = dataset_cfg(data, img_size, synthetic_ids)
    batches = decoded_batches(dataset, batch_size)
    num_images = sum(len(b) for b in batches)
    model = build_model('promptsg', arch, img_size, device).eval()
    mean = torch.tensor(CLIP_MEAN, device=device).view(1, 3, 1, 1) * 255
    std = torch.tensor(CLIP_STD, device=device).view(1, 3, 1, 1) * 255
    walls: list[float] = []

    def bare(fn):
        def loop() -> None:
            with (
                torch.no_grad(),
                torch.autocast(device.type, dtype=torch.float16, enabled=amp),
            ):
                for batch in batches:
                    fn((batch.to(device).float() - mean) / std)

        return loop

    with tempfile.TemporaryDirectory(prefix='promptsg_bench_') as tmp:
        ckpt, cfg_path = Path(tmp) / 'model.pth', Path(tmp) / 'extract.py'
        torch.save({'state_dict': model.state_dict(), 'meta': {}}, ckpt)
        write_config(cfg_path, model_cfg('promptsg', arch, img_size), dataset, batch_size)
        argv = [str(cfg_path), str(ckpt), '--work-dir', str(Path(tmp) / 'work')]
        argv += ['--amp'] if amp else []

        def run_test_tool() -> None:
            start = time.perf_counter()
            with contextlib.redirect_stdout(io.StringIO()):
                test_tool.main(argv)
            walls.append(time.perf_counter() - start)

        ExtractionTimerHook.records.clear()
        times = interleaved(
            {
                'bare_encode': bare(model.backbone),
                'bare_embed': bare(model.embed),
                'test_tool': run_test_tool,
            },
            repeats,
            warmup=1,
            device=device,
        )
    # The test tool's own sample is the hook's extraction time, not the whole call.
    records = ExtractionTimerHook.records[1:]
    if [n for n, _ in records] != [num_images] * repeats:
        raise RuntimeError(f'tools/test.py extracted {records} images, expected {num_images}')
    times['test_tool'] = [seconds for _, seconds in records]
    case = f'{case_name(arch, batch_size, img_size, amp)}, {data_name} ({num_images} images)'
    rows = []
    labels = {
        'test_tool': 'tools/test.py extraction',
        'bare_encode': 'bare encode_image loop',
        'bare_embed': 'bare model.embed loop',
    }
    for key, label in labels.items():
        rows.append(
            figure(
                BENCH,
                case,
                label,
                num_images / statistics.median(times[key]),
                'img/s',
                spread([num_images / t for t in times[key]], 1.0),
            )
        )
    for key in ('bare_encode', 'bare_embed'):
        rows.append(
            ratio_figure(
                BENCH,
                case,
                f'time tools/test.py / {labels[key]}',
                paired_ratio(times['test_tool'], times[key]),
            )
        )
    rows.append(
        figure(
            BENCH,
            case,
            'tools/test.py whole call',
            statistics.median(walls[1:]),
            's',
            'build, checkpoint load, extraction, metric',
        )
    )
    rows += loading(dataset, data_name, batch_size, workers, repeats, num_images)
    return rows


def loading(
    dataset: dict,
    data_name: str,
    batch_size: int,
    workers: list[int],
    repeats: int,
    num_images: int,
) -> list[dict]:
    """Images/s of a full pass of the test set through a DataLoader per worker count."""
    if not workers:
        return []
    init_default_scope('promptsg')
    built = DATASETS.build(dataset)
    loaders = {
        w: DataLoader(
            built,
            batch_size=batch_size,
            num_workers=w,
            persistent_workers=w > 0,
            collate_fn=default_collate,
        )
        for w in workers
    }

    def one_pass(loader):
        def run() -> None:
            for _ in loader:
                pass

        return run

    times = interleaved({w: one_pass(loader) for w, loader in loaders.items()}, repeats, warmup=1)
    case = f'b{batch_size}, {data_name} ({num_images} images)'
    return [
        figure(
            BENCH,
            case,
            f'data loading, {w} workers',
            num_images / statistics.median(times[w]),
            'img/s',
            spread([num_images / t for t in times[w]], 1.0),
        )
        for w in workers
    ]


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
    add_common_args(parser)
    parser.add_argument('--archs', nargs='+', help='CLIP archs (tiny-vit, tiny-rn, ViT-B-16, RN50)')
    parser.add_argument('--batch-size', type=int, help='test batch size')
    parser.add_argument('--img-size', type=int, nargs=2, metavar=('H', 'W'), help='input size')
    parser.add_argument('--repeats', type=int, help='timed rounds')
    parser.add_argument('--data', choices=DATA_CHOICES, help='test set (auto: cuhk03 if present)')
    parser.add_argument('--synthetic-ids', type=int, help='synthetic test identities (9 images)')
    parser.add_argument('--workers', type=int, nargs='+', help='data-loader worker counts')
    parser.add_argument('--amp', action='store_true', help='fp16 autocast (tools/test.py --amp)')
    return parser.parse_args(argv)


def main(argv=None) -> list[dict]:
    args = parse_args(argv)
    device = device_of(args)
    check_runner_device(device)
    opts = settings(args, DEFAULTS)
    if args.amp and device.type != 'cuda':
        raise ConfigError('--amp needs --device cuda')
    rows = []
    for i, arch in enumerate(opts['archs']):
        rows += measure(
            arch,
            opts['batch_size'],
            tuple(opts['img_size']),
            opts['repeats'],
            opts['data'],
            opts['synthetic_ids'],
            opts['workers'] if i == 0 else [],
            device,
            args.amp,
        )
    report('Extraction: tools/test.py vs bare loops; data loading', rows, device, args.json)
    return rows


if __name__ == '__main__':
    run_cli(main)
