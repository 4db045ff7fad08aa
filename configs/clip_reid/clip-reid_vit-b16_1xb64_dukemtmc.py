# CLIP-ReID on CLIP ViT-B/16, DukeMTMC-reID, the official recipe: batch 64 = 16 ids x 4 images,
# 256x128, both stages in one run (docs/clip_reid.md). Validation on held-out training ids.
_base_ = [
    '../_base_/datasets/dukemtmc.py',
    '../_base_/models/clip_reid_vit_b16.py',
    '../_base_/schedules/clip_reid_vit.py',
]
