# CLIP-ReID on CLIP RN50, MSMT17, the official recipe: batch 64 = 16 ids x 4 images,
# 256x128, both stages in one run (docs/clip_reid.md). Validation on held-out training ids.
_base_ = [
    '../_base_/datasets/msmt17.py',
    '../_base_/models/clip_reid_rn50.py',
    '../_base_/schedules/clip_reid_rn50.py',
]
