_base_ = './v5.py'
remark = 'Stability: grad clip 5 → 1; lr_clip_visual and lr_modules both 1e-6.'

optim_wrapper = dict(
    clip_grad=dict(max_norm=1.0),
    paramwise_cfg=dict(lr_clip_visual=1e-6, lr_modules=1e-6),
)
