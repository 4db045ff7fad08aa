# A small CLIP-ReID run derived from clip-reid_vit-b16_1xb64_market1501.py, as
# promptsg/promptsg_tiny-rn_1xb32_cuhk03-mini.py is for PromptSG: a tiny random-init CLIP ViT on
# the real CUHK03 mini set beside the project (../shared/data/cuhk03_mini, 50 training / 50 test
# ids, 2 cameras), 128x64 inputs, batch 32 = 8 ids x 4, validation on 10 held-out TRAINING ids.
# 10 prompt epochs, then 30 image epochs with the same image-encoder schedule as the tiny PromptSG
# run (lr 1e-3, x0.1 at its epochs 10 and 20). A few minutes on 2 CPU cores:
#     python tools/train.py configs/clip_reid/clip-reid_tiny-vit_1xb32_cuhk03-mini.py
_base_ = ['./clip-reid_vit-b16_1xb64_market1501.py']

data_root = '../shared/data/cuhk03_mini'
img_size = (128, 64)  # (H, W)
val_holdout = dict(mode='ids', size=10, seed=0)
cuhk03_mini = dict(type='Market1501', data_root=data_root, val_holdout=val_holdout)
train_pipeline = [
    dict(type='LoadImage'),
    dict(type='Resize', size=img_size),
    dict(type='RandomHorizontalFlip', prob=0.5),
    dict(type='Pad', padding=5),
    dict(type='RandomCrop', size=img_size),
    dict(type='RandomErasing', prob=0.5),
    dict(type='PackReIDInputs'),
]
test_pipeline = [
    dict(type='LoadImage'),
    dict(type='Resize', size=img_size),
    dict(type='PackReIDInputs'),
]
train_dataloader = dict(
    batch_size=32,
    num_workers=2,
    dataset=dict(**cuhk03_mini, pipeline=train_pipeline),
)
val_dataloader = dict(
    batch_size=64, num_workers=2, dataset=dict(**cuhk03_mini, pipeline=test_pipeline)
)
test_dataloader = dict(
    batch_size=64, num_workers=2, dataset=dict(**cuhk03_mini, pipeline=test_pipeline)
)

model = dict(backbone=dict(arch='tiny-vit', pretrained=None, img_size=img_size))

# A random-init model needs far larger learning rates than fine-tuning CLIP.
prompt_epochs, image_epochs = 10, 30
optim_wrapper = dict(
    prompt=dict(optimizer=dict(lr=5e-3)),
    image=dict(optimizer=dict(lr=1e-3, weight_decay=1e-4)),
)
param_scheduler = dict(
    _delete_=True,
    prompt=[
        dict(type='LinearLR', start_factor=0.1, by_epoch=True, begin=0, end=3),
        dict(type='CosineAnnealingLR', by_epoch=True, begin=3, end=prompt_epochs, eta_min=1e-4),
    ],
    image=[
        dict(
            type='MultiStepLR',
            by_epoch=True,
            milestones=[10, 20],
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
default_hooks = dict(
    logger=dict(interval=5),
    early_stopping=dict(patience=4, min_delta=0.1),
)
