# Market-1501 (SPEC §7): bounding_box_train/, query/, bounding_box_test/; 751 training ids.
# Validation on held-out TRAINING identities (10 %, seeded; one image per camera of each held-out
# id is a query, the rest gallery), never on test images (SPEC §5.3); train and val use the same
# val_holdout dict, so the held-out ids are dropped from training. Test = query vs gallery with
# the same-id-same-camera rule. Point data_root at the unpacked folder with --data-root or
# --cfg-options {train,val,test}_dataloader.dataset.data_root=... (docs/datasets.md).
data_root = 'data/market1501'
img_size = (256, 128)  # (H, W)
val_holdout = dict(mode='ids', size=0.1, seed=0)
market1501 = dict(type='Market1501', data_root=data_root, val_holdout=val_holdout)

# CLIP-ReID's augmentation: resize, flip 0.5, pad 10 + random crop, random erasing 0.5.
# Normalisation (CLIP mean/std) happens once, in the model's data preprocessor.
train_pipeline = [
    dict(type='LoadImage'),
    dict(type='Resize', size=img_size),
    dict(type='RandomHorizontalFlip', prob=0.5),
    dict(type='Pad', padding=10),
    dict(type='RandomCrop', size=img_size),
    dict(type='RandomErasing', prob=0.5),
    dict(type='PackReIDInputs'),
]
test_pipeline = [
    dict(type='LoadImage'),
    dict(type='Resize', size=img_size),
    dict(type='PackReIDInputs'),
]

# Batch 64 = 16 identities x 4 images (P x K).
train_dataloader = dict(
    batch_size=64,
    num_workers=8,
    sampler=dict(type='PKSampler', num_instances=4),
    collate_fn=dict(type='default_collate'),
    dataset=dict(**market1501, split='train', pipeline=train_pipeline),
)
val_dataloader = dict(
    batch_size=128,
    num_workers=8,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
    dataset=dict(**market1501, split='val', pipeline=test_pipeline),
)
test_dataloader = dict(
    batch_size=128,
    num_workers=8,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
    dataset=dict(**market1501, split='test', pipeline=test_pipeline),
)
val_evaluator = dict(type='ReIDMetric')
test_evaluator = val_evaluator
