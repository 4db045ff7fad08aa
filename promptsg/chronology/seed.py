"""The seed chronology's final scores (``seed-stage3-chronology.txt``), kept for comparison only.

They came from an earlier implementation with the flaws listed in SPEC §5: the prompt path had no
effect and no gradient, train/val images were not normalised, model selection and early stopping
used test images, the "best" model was the last one, the BNNeck reduction was not optimised and
gradients were clipped after the step, dropout never ran, there was no identity sampler, no seed,
RN50's positional embedding was resized in 1-D, and log parsing mislabelled Rank-10 as Rank-1.
None of them is a measurement of the configs in this folder.
"""

from __future__ import annotations

#: (Rank-1, mAP) per version as the seed reports them; None where it gives no numbers.
SEED_SCORES: dict[str, dict[str, tuple[float, float] | None]] = {
    'vit_b16': {
        'v1': (62.38, 71.57),
        'v2': (36.45, 47.64),
        'v3': (26.35, 38.68),
        'v4': (42.25, 54.32),
        'v5': (41.45, 52.09),
        'v6': (80.83, 86.63),
        'v7': None,
        'v8': (85.86, 89.99),
        'v9': (84.90, 89.79),
        'v10': (84.87, 89.35),
        'v11': (81.59, 86.93),
    },
    'rn50': {
        'v1': (64.07, 71.44),
        'v2': (56.18, 66.17),
        'v3': (68.99, 76.28),
        'v4': (42.25, 54.32),
        'v5': (45.70, 55.54),
        'v6': (50.08, 60.29),
        'v7': (51.62, 62.63),
        'v8': (61.23, 69.75),
        'v9': (52.86, 62.88),
        'v10': (63.00, 71.13),
        'v11': (58.25, 67.29),
    },
}


def seed_scores_text(backbone: str, version: str) -> str:
    """``R1 80.83, mAP 86.63``, or a dash where the seed has no numbers."""
    scores = SEED_SCORES.get(backbone, {}).get(version)
    return f'R1 {scores[0]:.2f}, mAP {scores[1]:.2f}' if scores else '—'
