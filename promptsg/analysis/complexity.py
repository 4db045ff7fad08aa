"""What a model costs: parameters per part (trainable / frozen) and FLOPs of one embedding at
the configured input size, counted by ``torch.utils.flop_counter.FlopCounterMode``.

The counter covers the ops torch has FLOP formulas for (matrix products, convolutions,
attention); element-wise ops, norms and activations are not counted, as in fvcore and
mmengine's counters. A multiply-add counts as 2 FLOPs.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

#: Parts whose children are listed as parts of their own (the image and text encoders).
EXPAND = ('backbone',)


def model_parts(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Top-level children with parameters, the backbone split into its children."""
    parts = []
    for name, child in model.named_children():
        if name in EXPAND and any(True for _ in child.children()):
            parts += [(f'{name}.{n}', c) for n, c in child.named_children()]
            own = [p for n, p in child.named_parameters(recurse=False)]
            if own:
                parts.append((f'{name} (own)', _ParamHolder(own)))
        else:
            parts.append((name, child))
    return [(n, m) for n, m in parts if any(True for _ in m.parameters())]


class _ParamHolder(nn.Module):
    def __init__(self, params: list[nn.Parameter]) -> None:
        super().__init__()
        self.params = nn.ParameterList(params)


def parameter_rows(model: nn.Module) -> list[dict]:
    """``dict(part, trainable, frozen, total)`` per part, then a ``total`` row."""
    rows = []
    for name, module in model_parts(model):
        trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
        frozen = sum(p.numel() for p in module.parameters() if not p.requires_grad)
        rows.append(dict(part=name, trainable=trainable, frozen=frozen, total=trainable + frozen))
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)
    rows.append(dict(part='total', trainable=trainable, frozen=frozen, total=trainable + frozen))
    return rows


@torch.no_grad()
def embedding_flops(
    model: nn.Module, input_size: tuple[int, int], aspect: str = ''
) -> tuple[int, dict[str, int]]:
    """FLOPs of ``model.embed`` on one (3, H, W) image in eval mode: the total and per called
    module (``{'CLIPViT': ..., 'CLIPViT.visual': ..., 'MultimodalInteraction': ...}``).

    A call before counting fills caches (PromptSG's fixed-prompt text feature is encoded once
    and reused), so the figure is the cost of every further image. Attention runs unfused
    while counting (fused kernels have no FLOP formula); the sums are the same.
    """
    model.eval()
    h, w = input_size
    images = torch.rand(1, 3, h, w) * 255
    samples = {'aspect': [aspect]}
    if getattr(model, 'sie_cameras', 0):  # camera 0: the id picks a row, not the cost
        samples['camid'] = torch.zeros(1, dtype=torch.long)
    data = model.data_preprocessor({'inputs': images, 'data_samples': samples})
    model.embed(data['inputs'], data['data_samples'])
    counter = FlopCounterMode(display=False)
    # nn.MultiheadAttention's eval fast path and the CPU flash kernel of
    # scaled_dot_product_attention are fused ops without FLOP formulas: the counter would miss
    # the attention projections and products. The math kernel does the same sums as bmm's.
    fastpath = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        with sdpa_kernel(SDPBackend.MATH), counter:
            model.embed(data['inputs'], data['data_samples'])
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)
    # ``embed`` is not ``forward``: the counter names each module called from it by class
    # (``CLIPViT``, ``PromptComposer``, ...), and their children by path (``CLIPViT.visual``);
    # a module called inside another (the text encoder inside ``PromptComposer``) counts there.
    counts = {k: int(sum(v.values())) for k, v in counter.get_flop_counts().items()}
    backbone = type(model.backbone).__name__ if hasattr(model, 'backbone') else None
    names = [
        k
        for k in counts
        if k != 'Global' and ('.' not in k or (k.count('.') == 1 and k.split('.')[0] == backbone))
    ]
    tops = list(dict.fromkeys(k.split('.')[0] for k in names))  # in call order
    names.sort(key=lambda k: (tops.index(k.split('.')[0]), k.count('.')))
    return int(counter.get_total_flops()), {k: counts[k] for k in names}
