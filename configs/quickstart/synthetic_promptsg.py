# Quick start: a tiny PromptSG (random-init CLIP ViT) on synthetic identities; about 1-2 minutes on 2 CPU cores.
_base_ = ['../_base_/default_runtime.py']

img_size = (128, 64)
num_train_ids = 256
synthetic = dict(
    type='SyntheticReID',
    num_train_ids=num_train_ids,
    num_test_ids=64,
    images_per_id=8,
    img_size=img_size,
    seed=0,
)
train_pipeline = [
    dict(type='LoadImage'),
    dict(type='RandomHorizontalFlip', prob=0.5),
    dict(type='Pad', padding=4),
    dict(type='RandomCrop', size=img_size),
    dict(type='PackReIDInputs'),
]
test_pipeline = [
    dict(type='LoadImage'),
    dict(type='Resize', size=img_size),
    dict(type='PackReIDInputs'),
]

train_dataloader = dict(
    batch_size=32,
    num_workers=0,
    sampler=dict(type='PKSampler', num_instances=4),
    collate_fn=dict(type='default_collate'),
    dataset=dict(**synthetic, split='train', pipeline=train_pipeline),
)
val_dataloader = dict(
    batch_size=64,
    num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
    dataset=dict(**synthetic, split='val', pipeline=test_pipeline),
)
test_dataloader = dict(
    batch_size=64,
    num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
    dataset=dict(**synthetic, split='test', pipeline=test_pipeline),
)
val_evaluator = dict(type='ReIDMetric')
test_evaluator = val_evaluator

model = dict(
    type='PromptSG',
    num_classes=num_train_ids,
    backbone=dict(type='CLIPViT', arch='tiny-vit', img_size=img_size, pretrained=None),
    inversion=dict(type='InversionNetwork', variant='paper', hidden_dim=64),
    prompt=dict(type='PromptComposer', template='A photo of a {} person.'),
    fixed_prompt=dict(type='FixedPrompt', template='A photo of a person.'),
    interaction=dict(
        type='MultimodalInteraction', num_heads=4, num_cross_layers=1, num_self_layers=1
    ),
    neck=dict(type='BNNeck'),
    head=dict(type='LinearClassifier'),
    losses=dict(
        ce=dict(type='CrossEntropyLoss', label_smoothing=0.1),
        triplet=dict(type='TripletLoss', margin=0.3),
        supcon=dict(type='SupConLoss', temperature=0.07, loss_weight=0.5),
    ),
    test_cfg=dict(prompt='composed'),
)

optim_wrapper = dict(
    optimizer=dict(type='AdamW', lr=2e-3, weight_decay=1e-4),
    clip_grad=dict(max_norm=5.0),
)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=10),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=30, eta_min=1e-5),
]
train_cfg = dict(by_epoch=True, max_epochs=30, val_interval=10)
val_cfg = dict()
test_cfg = dict()
default_hooks = dict(logger=dict(interval=16), checkpoint=dict(interval=10))
