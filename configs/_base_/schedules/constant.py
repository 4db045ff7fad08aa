# Constant learning rates (SPEC v1): AdamW, lr_clip_visual 1e-4, lr_modules 1e-5, clip 5.
optim_wrapper = dict(
    type='ReIDOptimWrapper',
    constructor='ReIDOptimWrapperConstructor',
    optimizer=dict(type='AdamW', lr=1e-4, weight_decay=5e-4),
    paramwise_cfg=dict(lr_clip_visual=1e-4, lr_modules=1e-5),
    clip_grad=dict(max_norm=5.0),
    accumulative_counts=1,
    nonfinite='skip',
)
param_scheduler = []
train_cfg = dict(by_epoch=True, max_epochs=20, val_interval=1)
val_cfg = dict()
test_cfg = dict()
