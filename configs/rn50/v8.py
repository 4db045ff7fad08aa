_base_ = './v7.py'
remark = (
    'All 4 ResNet stages train; ArcFace s 30 (m 0.35); lr_clip_visual and lr_modules 1e-4; '
    'grad clip 0.5; LR scheduler removed (constant); center loss on (weight 5e-4, outside the '
    'balancing); bnneck_dim 1024.'
)

model = dict(
    backbone=dict(unfreeze_blocks=4),
    neck=dict(bnneck_dim=1024),
    head=dict(scale=30.0),
    losses=dict(center=dict(type='CenterLoss', loss_weight=5e-4)),
)
optim_wrapper = dict(
    clip_grad=dict(max_norm=0.5),
    paramwise_cfg=dict(lr_clip_visual=1e-4, lr_modules=1e-4),
)
param_scheduler = []
