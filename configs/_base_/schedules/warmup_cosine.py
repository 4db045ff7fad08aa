# Linear warm-up over the first epoch, updated every iteration, then cosine annealing per
# iteration to eta_min_ratio x each group's lr (1e-4 -> 1e-7), so the groups keep their ratio.
_base_ = ['./constant.py']

optim_wrapper = dict(optimizer=dict(weight_decay=1e-4))
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=0.01,
        by_epoch=True,
        begin=0,
        end=1,
        convert_to_iter_based=True,
    ),
    # `end` defaults to train_cfg.max_epochs.
    dict(
        type='CosineAnnealingLR',
        eta_min_ratio=1e-3,
        by_epoch=True,
        begin=1,
        convert_to_iter_based=True,
    ),
]
