# The paper's schedule: Adam, lr 5e-6 for the image encoder and 5e-5 for new modules, 60 epochs,
# x0.1 at epochs 20 and 40 (every group keeps its ratio).
_base_ = ['./constant.py']

optim_wrapper = dict(
    optimizer=dict(type='Adam', lr=5e-6, weight_decay=5e-4),
    paramwise_cfg=dict(lr_clip_visual=5e-6, lr_modules=5e-5),
)
param_scheduler = [dict(type='MultiStepLR', by_epoch=True, milestones=[20, 40], gamma=0.1)]
train_cfg = dict(max_epochs=60)
