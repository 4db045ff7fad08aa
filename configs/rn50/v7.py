_base_ = './v6.py'
remark = (
    'lr_clip_visual 1e-6 → 5e-4; ArcFace s 25, m 0.35; only the last 2 ResNet stages train. '
    'Loss stays ArcFace + triplet + SupCon.'
)

model = dict(
    backbone=dict(unfreeze_blocks=2),
    head=dict(scale=25.0, margin=0.35),
)
optim_wrapper = dict(paramwise_cfg=dict(lr_clip_visual=5e-4))
