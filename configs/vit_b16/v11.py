_base_ = './v10.py'
remark = 'Portrait input 224x128 (was 224x224); the positional embedding is resized in 2-D.'

img_size = (224, 128)  # (H, W)
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
model = dict(backbone=dict(img_size=img_size))
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
