# 11k Hands, dorsal right (SPEC §4): accessories == 0, published id split (id <= 1050 trains),
# one seeded held-out image per training id as validation (training ids only, never test
# images), 10 seeded Monte-Carlo query/gallery splits of the test ids.
# Set data_root to the folder holding HandInfo.csv and Hands/ (see tools/prepare_11k.py), with
# --cfg-options train_dataloader.dataset.data_root=... (and val/test), or with
# tools/run_chronology.py --data-root.
data_root = 'data/11k_hands'
img_size = (224, 224)  # (H, W)
hands = dict(type='Hands11k', data_root=data_root, aspects='dorsal right', accessories=0, seed=0)

# No horizontal flip: a flipped right hand looks like a left hand. Normalisation (CLIP mean/std)
# happens once, in the model's data preprocessor, for train, val and test alike.
train_pipeline = [
    dict(type='LoadImage'),
    dict(type='Resize', size=img_size),
    dict(type='Pad', padding=10),
    dict(type='RandomCrop', size=img_size),
    dict(type='PackReIDInputs'),
]
test_pipeline = [
    dict(type='LoadImage'),
    dict(type='Resize', size=img_size),
    dict(type='PackReIDInputs'),
]

# Batch 32 = 8 identities x 4 images (P x K).
train_dataloader = dict(
    batch_size=32,
    num_workers=4,
    sampler=dict(type='PKSampler', num_instances=4),
    collate_fn=dict(type='default_collate'),
    dataset=dict(**hands, split='train', pipeline=train_pipeline),
)
val_dataloader = dict(
    batch_size=64,
    num_workers=4,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
    dataset=dict(**hands, split='val', pipeline=test_pipeline),
)
test_dataloader = dict(
    batch_size=64,
    num_workers=4,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
    dataset=dict(**hands, split='test', num_splits=10, gallery='own', pipeline=test_pipeline),
)
val_evaluator = dict(type='ReIDMetric')
test_evaluator = val_evaluator
