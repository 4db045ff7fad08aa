"""The correctness part of the GPU check: mixed-precision training steps, loss dtypes, fixed-prompt
evaluation, and an exact save + resume of the generators, on one device.

    python bench/gpu_check.py --device cuda --archs ViT-B-16 RN50 --batch-size 64
    python bench/gpu_check.py --device cpu --archs tiny-vit tiny-rn --batch-size 8 --img-size 64 32

Per arch and autocast dtype (bf16, fp16) it builds PromptSG (random init) and its
``ReIDOptimWrapper`` on the CPU, THEN moves the model to the device (the wrapper must find the
device when the step runs), takes one warm-up and ``--steps`` timed training steps, and checks
that the backbone ran in the low precision, every loss term is float32 and finite, and the
weights moved; it reports training images/s. Then it evaluates with the fixed prompt (its cached
text feature must sit on the device in float32) against a float32 evaluation, and trains the
quick-start config for 2 epochs through the Runner, once straight and once as 1 epoch + resume,
comparing the CUDA (or CPU) generator state at the start of epoch 2 and the final weights.
Prints one table; exit status 1 when a check fails.
"""

from __future__ import annotations

import argparse
import hashlib
import os.path as osp
import sys
import tempfile
import time

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from mmengine.hooks import Hook  # noqa: E402

from bench.workloads import build_model, synthetic_batch  # noqa: E402
from promptsg.engine.cli import run_cli  # noqa: E402
from promptsg.engine.config import load_config  # noqa: E402
from promptsg.engine.optimizers import ReIDOptimWrapper  # noqa: E402
from promptsg.engine.runner import build_runner  # noqa: E402

QUICKSTART = osp.join(
    osp.dirname(osp.dirname(osp.abspath(__file__))),
    'configs',
    'quickstart',
    'synthetic_promptsg.py',
)
DTYPES = {'bfloat16': torch.bfloat16, 'float16': torch.float16}


def _sync(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def train_steps(arch, dtype, batch_size, img_size, steps, device) -> dict:
    """One warm-up and ``steps`` timed mixed-precision training steps; the checks' outcome."""
    model = build_model('promptsg', arch, img_size, 'cpu')
    params = [p for p in model.parameters() if p.requires_grad]
    # fp16: a dynamic scaler from 256 (not 65536, whose first steps overflow and are skipped)
    scale = dict(init_scale=256.0)
    wrapper = ReIDOptimWrapper(torch.optim.AdamW(params, lr=1e-5), dtype=dtype, loss_scale=scale)
    model.to(device)  # after the wrapper: it must resolve the autocast device at step time
    batch = synthetic_batch(batch_size, img_size)
    seen = []
    model.backbone.register_forward_hook(lambda m, i, o: seen.append(o[0].dtype))
    before = model.interaction.norm_out.weight.detach().clone()
    terms, times = {}, []
    for step in range(1 + steps):
        _sync(device)
        start = time.perf_counter()
        with wrapper.optim_context(model):
            data = model.data_preprocessor(batch, True)
            losses = model(**data, mode='loss')
        total, _ = model.parse_losses(losses)
        wrapper.update_params(total)
        _sync(device)
        if step:
            times.append(time.perf_counter() - start)
        terms = {k: v for k, v in losses.items() if 'loss' in k}
    low = DTYPES[dtype]
    problems = []
    if set(seen) != {low}:
        problems.append(f'backbone ran in {sorted(map(str, set(seen)))}, not {low}')
    wrong = sorted(k for k, v in terms.items() if v.dtype != torch.float32)
    if wrong:
        problems.append(f'loss terms not float32: {wrong}')
    bad = sorted(k for k, v in terms.items() if not torch.isfinite(v).all())
    if bad:
        problems.append(f'non-finite loss terms: {bad}')
    if torch.equal(before, model.interaction.norm_out.weight.detach()):
        problems.append(f'the weights did not move in {1 + steps} steps')
    seconds = sum(times) / len(times)
    return dict(
        check=f'train {arch} {dtype}',
        ok=not problems,
        detail='; '.join(problems)
        or f'{len(terms)} loss terms float32, non-finite skips {wrapper.nonfinite_skips}'
        + (f', loss scale {wrapper.loss_scaler.get_scale():g}' if wrapper.loss_scaler else ''),
        figure=f'{batch_size / seconds:.1f} img/s ({seconds * 1000:.0f} ms/step)',
        model=model,
        batch=batch,
    )


def fixed_prompt_eval(model, batch, device) -> dict:
    """Fixed-prompt features under bf16 autocast against float32 ones."""
    model.eval()
    model.test_cfg['prompt'] = 'fixed'
    model.fixed_prompt.clear()
    inputs = model.data_preprocessor(batch, False)['inputs']
    with torch.no_grad():
        with torch.autocast(device.type, dtype=torch.bfloat16):
            low = model.embed(inputs).float()
        cache = model.fixed_prompt.features
        full = model.embed(inputs)
    cosine = F.cosine_similarity(low, full, dim=1).min().item()
    problems = []
    if cache.device.type != device.type or cache.dtype != torch.float32:
        problems.append(f'fixed-prompt cache is {cache.dtype} on {cache.device}')
    if not cosine > 0.99:
        problems.append(f'bf16 vs float32 features: min cosine {cosine:.4f}')
    return dict(
        check=f'fixed-prompt eval {model.backbone.arch}',
        ok=not problems,
        detail='; '.join(problems) or f'cache float32 on {cache.device}',
        figure=f'min cosine bf16/fp32 {cosine:.4f}',
    )


class GeneratorProbe(Hook):
    """Digest of the device generator's state at the start of each training epoch."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.digests: dict[int, str] = {}

    def before_train_epoch(self, runner) -> None:
        state = (
            torch.cuda.get_rng_state(self.device)
            if self.device.type == 'cuda'
            else torch.get_rng_state()
        )
        self.digests[runner.epoch] = hashlib.sha1(state.numpy().tobytes()).hexdigest()[:12]


def _run(work_dir: str, epochs: int, device: torch.device, resume: str | None = None):
    options = {
        'train_cfg.max_epochs': epochs,
        'train_cfg.val_interval': 1,
        **{f'{split}_dataloader.dataset.num_train_ids': 16 for split in ('train', 'val', 'test')},
        **{f'{split}_dataloader.dataset.num_test_ids': 8 for split in ('train', 'val', 'test')},
        'model.num_classes': 16,
        'model.feat_dropout': 0.2,  # draws from the device generator
        'train_dataloader.batch_size': 16,
        'default_hooks.early_stopping': None,
        'default_hooks.logger.interval': 100,
        'optim_wrapper.dtype': 'bfloat16',
    }
    cfg = load_config(QUICKSTART, options)
    cfg.log_level = 'WARNING'
    runner = build_runner(cfg, work_dir, resume=resume)
    probe = GeneratorProbe(device)
    runner.register_hook(probe, priority='LOW')  # after RandomStateHook restores the states
    runner.train()
    weights = {k: v.detach().float().cpu() for k, v in runner.model.state_dict().items()}
    return probe.digests, weights


def save_and_resume(device: torch.device) -> dict:
    """2 epochs straight vs 1 epoch, save, resume to 2: generator state and final weights."""
    with tempfile.TemporaryDirectory() as straight, tempfile.TemporaryDirectory() as resumed:
        digests_a, weights_a = _run(straight, 2, device)
        _run(resumed, 1, device)
        digests_b, weights_b = _run(resumed, 2, device, resume='auto')
    gap = max((weights_a[k] - weights_b[k]).abs().max().item() for k in weights_a)
    same_state = digests_a.get(1) is not None and digests_a.get(1) == digests_b.get(1)
    problems = [] if same_state else [f'generator at epoch 2: {digests_a} vs {digests_b}']
    if gap > 1e-3:
        problems.append(f'final weights differ by up to {gap:.2e}')
    kind = 'CUDA' if device.type == 'cuda' else 'CPU'
    return dict(
        check=f'save + resume ({kind} generator)',
        ok=not problems,
        detail='; '.join(problems) or f'{kind} generator state restored at epoch 2',
        figure=f'max weight gap {gap:.1e}',
    )


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
    parser.add_argument('--device', default='cuda')
    parser.add_argument('--archs', nargs='+', default=['ViT-B-16', 'RN50'])
    parser.add_argument('--batch-size', type=int, default=64)
    parser.add_argument('--img-size', type=int, nargs=2, default=[256, 128], metavar=('H', 'W'))
    parser.add_argument('--steps', type=int, default=3, help='timed steps per arch and dtype')
    parser.add_argument('--no-resume', action='store_true', help='skip the Runner resume check')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    device = torch.device(args.device)
    if device.type == 'cuda' and not torch.cuda.is_available():
        print('gpu_check: skipped: no CUDA device on this machine')
        return 0
    rows = []
    for arch in args.archs:
        for dtype in DTYPES:
            row = train_steps(
                arch, dtype, args.batch_size, tuple(args.img_size), args.steps, device
            )
            model, batch = row.pop('model'), row.pop('batch')
            rows.append(row)
        rows.append(fixed_prompt_eval(model, batch, device))
        del model
        if device.type == 'cuda':
            torch.cuda.empty_cache()
    if not args.no_resume:
        rows.append(save_and_resume(device))
    name = torch.cuda.get_device_name(device) if device.type == 'cuda' else 'CPU'
    print(f'\ngpu_check on {name} (torch {torch.__version__})')
    print('| check | result | detail | figure |')
    print('|---|---|---|---|')
    for row in rows:
        result = 'ok' if row['ok'] else 'FAILED'
        print(f'| {row["check"]} | {result} | {row["detail"]} | {row["figure"]} |')
    failed = [r['check'] for r in rows if not r['ok']]
    print(
        f'{len(rows) - len(failed)}/{len(rows)} checks passed'
        + (f'; failed: {failed}' if failed else '')
    )
    return 1 if failed else 0


if __name__ == '__main__':
    run_cli(lambda: sys.exit(main()))
