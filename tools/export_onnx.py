"""Export the image → embedding path: ``python tools/export_onnx.py CONFIG CHECKPOINT --out m.onnx``.

CHECKPOINT is a checkpoint file or a training work dir (its best checkpoint, as tools/test.py).

The ONNX graph takes ``images`` (B, 3, H, W) float32 RGB in 0-255, resized to the config's input
size, and returns ``embeddings`` (B, D), L2-normalised (PromptSG: the fixed prompt, cached in the
graph). A model with SIE (a camera embedding) takes ``camids`` (B,) int64 too. It is checked
against torch with onnxruntime unless ``--no-verify``.
"""

import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import promptsg.registry  # noqa: E402,F401  (a broken import shows its real traceback)
from promptsg.apis.inferencer import ReIDInferencer  # noqa: E402
from promptsg.apis.onnx_export import DEFAULT_OPSET, compare_onnx, export_onnx  # noqa: E402
from promptsg.engine.cli import run_cli  # noqa: E402
from promptsg.engine.config import DictAction  # noqa: E402
from promptsg.errors import ConfigError, PromptSGError  # noqa: E402
from promptsg.optional import require  # noqa: E402


class ExportMismatchError(PromptSGError):
    """onnxruntime's embeddings differ from torch's by more than the tolerance."""


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Export a promptsg model to ONNX')
    parser.add_argument('config', help='config file the checkpoint was trained with')
    parser.add_argument(
        'checkpoint', help='checkpoint file, or a training work dir (its best_*.pth is used)'
    )
    parser.add_argument('--out', required=True, help='ONNX file to write (.onnx)')
    parser.add_argument('--opset', type=int, default=DEFAULT_OPSET, help='ONNX opset version')
    parser.add_argument('--aspect', default='', help="words for a template's {aspect} slot")
    parser.add_argument('--no-verify', action='store_true', help='skip the onnxruntime check')
    parser.add_argument(
        '--atol', type=float, default=1e-4, help='largest allowed |onnxruntime - torch|'
    )
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config keys')
    return parser.parse_args(argv)


def main(argv=None) -> float | None:
    args = parse_args(argv)
    if not args.out.endswith('.onnx'):
        raise ConfigError(f'--out {args.out}: name the ONNX file *.onnx')
    require('onnx', 'ONNX export')  # before the model is built: fail fast
    if not args.no_verify:
        require('onnxruntime', 'checking the ONNX export (skip it with --no-verify)')
    inferencer = ReIDInferencer(args.config, args.checkpoint, cfg_options=args.cfg_options)
    model = inferencer.model
    path = export_onnx(model, args.out, aspect=args.aspect, opset=args.opset)
    cameras = getattr(model, 'sie_cameras', 0)
    inputs = 'images' + (f' + camids (0..{cameras - 1})' if cameras else '')
    print(
        f'exported {type(model).__name__} of {inferencer.checkpoint} '
        f'({inputs} -> embedding, opset {args.opset}) -> {path}'
    )
    if args.no_verify:
        return None
    diff = compare_onnx(model, path, aspect=args.aspect)
    if diff > args.atol:
        raise ExportMismatchError(
            f'onnxruntime differs from torch by {diff:.3g} (> --atol {args.atol:g}) on random images'
        )
    print(f'onnxruntime matches torch: max abs difference {diff:.3g}')
    return diff


if __name__ == '__main__':
    run_cli(main)
