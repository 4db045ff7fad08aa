# A tiny PromptSG (random-init CLIP ViT, 64x32 input) for the inference, tool and export tests.
default_scope = 'promptsg'
img_size = (64, 32)
test_pipeline = [
    dict(type='LoadImage'),
    dict(type='Resize', size=img_size),
    dict(type='PackReIDInputs'),
]
test_dataloader = dict(
    batch_size=8,
    num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
    dataset=dict(
        type='SyntheticReID',
        num_train_ids=4,
        num_test_ids=4,
        images_per_id=3,
        img_size=img_size,
        seed=0,
        split='test',
        pipeline=test_pipeline,
    ),
)
model = dict(
    type='PromptSG',
    num_classes=4,
    backbone=dict(type='CLIPViT', arch='tiny-vit', img_size=img_size, pretrained=None),
    inversion=dict(type='InversionNetwork', variant='paper', hidden_dim=32),
    prompt=dict(type='PromptComposer', template='A photo of a {} person.'),
    fixed_prompt=dict(type='FixedPrompt', template='A photo of a person.'),
    interaction=dict(
        type='MultimodalInteraction', num_heads=4, num_cross_layers=1, num_self_layers=1
    ),
    neck=dict(type='BNNeck'),
    head=dict(type='LinearClassifier'),
    losses=dict(ce=dict(type='CrossEntropyLoss'), triplet=dict(type='TripletLoss')),
    test_cfg=dict(prompt='composed'),
)
