_base_ = './v7.py'
remark = (
    'bnneck_dim 1024; grad clip 0.5; LR scheduler removed (constant); ArcFace loss back. '
    'Learning rates stay 1e-6.'
)
as_run = 'constant lr 2.2e-6; the seed text says lr 1e-4, copied from the RN50 row'

model = dict(
    neck=dict(bnneck_dim=1024),
    losses=dict(arcface=dict(type='ArcFaceLoss')),
    loss_balancer=dict(terms=['loss_arcface', 'loss_triplet', 'loss_supcon']),
)
optim_wrapper = dict(clip_grad=dict(max_norm=0.5))
param_scheduler = []
