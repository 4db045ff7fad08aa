# CUHK03-NP, labeled boxes, new protocol (767 / 700 ids; SPEC §7): data_root holds labeled/ and
# detected/, each in the Market layout. Loaders, augmentation and validation as in
# market1501.py. For the detected boxes set subset='detected' in all three loaders.
_base_ = ['./market1501.py']

data_root = 'data/cuhk03np'
train_dataloader = dict(dataset=dict(type='CUHK03NP', data_root=data_root, subset='labeled'))
val_dataloader = dict(dataset=dict(type='CUHK03NP', data_root=data_root, subset='labeled'))
test_dataloader = dict(dataset=dict(type='CUHK03NP', data_root=data_root, subset='labeled'))
