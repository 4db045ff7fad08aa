_base_ = './v1.py'
remark = (
    'Weight decay 1e-4; 1-epoch LR warm-up then cosine; SupCon on (temperature 0.07) with '
    'learned uncertainty loss-balancing over CE, triplet and SupCon; early-stop patience 7.'
)

optim_wrapper = dict(optimizer=dict(weight_decay=1e-4))
# Warm-up over the first epoch, updated every iteration, then cosine to 1e-7 by epoch 20.
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=0.01,
        by_epoch=True,
        begin=0,
        end=1,
        convert_to_iter_based=True,
    ),
    dict(
        type='CosineAnnealingLR',
        eta_min=1e-7,
        by_epoch=True,
        begin=1,
        end=20,
        T_max=19,
        convert_to_iter_based=True,
    ),
]
model = dict(
    losses=dict(supcon=dict(type='SupConLoss', temperature=0.07, loss_weight=0.5)),
    loss_balancer=dict(
        type='UncertaintyWeighting', terms=['loss_ce', 'loss_triplet', 'loss_supcon']
    ),
)
default_hooks = dict(early_stopping=dict(patience=7))
