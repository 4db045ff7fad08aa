# DukeMTMC-reID (SPEC §7): the Market layout, names 0005_c2_f0046985.jpg; 702 training ids,
# 408 gallery distractors. Loaders, augmentation and validation on held-out training ids as in
# market1501.py.
_base_ = ['./market1501.py']

data_root = 'data/dukemtmc'
train_dataloader = dict(dataset=dict(type='DukeMTMCreID', data_root=data_root))
val_dataloader = dict(dataset=dict(type='DukeMTMCreID', data_root=data_root))
test_dataloader = dict(dataset=dict(type='DukeMTMCreID', data_root=data_root))
