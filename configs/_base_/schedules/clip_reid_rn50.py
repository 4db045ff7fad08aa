# CLIP-ReID's two stages on RN50 (official configs/person/cnn_clipreid.yml): stage 'prompt' 60
# epochs (as for ViT: Adam 3.5e-4, warm-up 5 epochs, cosine to 1e-6); stage 'image' 120 epochs,
# Adam lr 3.5e-4 (biases 7e-4), wd 5e-4, warm-up x0.01 over 10 epochs, x0.1 at its epochs 40
# and 70.
_base_ = ['./clip_reid_vit.py']

prompt_epochs, image_epochs = 60, 120
optim_wrapper = dict(image=dict(optimizer=dict(lr=3.5e-4, weight_decay=5e-4)))
param_scheduler = dict(
    _delete_=True,
    prompt=[
        dict(type='LinearLR', start_factor=1e-5 / 3.5e-4, by_epoch=True, begin=0, end=5),
        dict(type='CosineAnnealingLR', by_epoch=True, begin=5, end=prompt_epochs, eta_min=1e-6),
    ],
    image=[
        dict(
            type='LinearLR',
            start_factor=0.01,
            by_epoch=True,
            begin=prompt_epochs,
            end=prompt_epochs + 10,
        ),
        dict(
            type='MultiStepLR',
            by_epoch=True,
            milestones=[40, 70],
            gamma=0.1,
            begin=prompt_epochs,
            end=prompt_epochs + image_epochs,
        ),
    ],
)
train_cfg = dict(max_epochs=prompt_epochs + image_epochs, val_begin=prompt_epochs + 1)
custom_hooks = [
    dict(
        type='TrainingStagesHook',
        stages=[
            dict(name='prompt', epochs=prompt_epochs, cache_features=True),
            dict(name='image', epochs=image_epochs),
        ],
    ),
    dict(type='ReIDTrainingHook'),
    dict(type='PortableCheckpointHook'),
    dict(type='RandomStateHook'),
    dict(type='SyncBuffersHook'),
    dict(type='FeatureProgressHook'),
]
