# VeRi-776 vehicles (SPEC §7): image_train/, image_query/, image_test/; 576 training ids, 20
# cameras. Vehicles are square-ish: 256x256 as CLIP-ReID uses; otherwise the augmentation and
# the validation on held-out training ids of market1501.py.
_base_ = ['./market1501.py']

data_root = 'data/veri776'
img_size = (256, 256)
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
train_dataloader = dict(dataset=dict(type='VeRi776', data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(type='VeRi776', data_root=data_root, pipeline=test_pipeline))
test_dataloader = dict(dataset=dict(type='VeRi776', data_root=data_root, pipeline=test_pipeline))
