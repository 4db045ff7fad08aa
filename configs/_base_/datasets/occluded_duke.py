# Occluded-Duke (SPEC §7): the Market layout with Duke's names; 702 training ids, occluded
# queries of 519 test ids. Loaders, augmentation and validation as in market1501.py (the
# validation ids are held out of Occluded-Duke's own training set).
_base_ = ['./market1501.py']

data_root = 'data/occluded_duke'
train_dataloader = dict(dataset=dict(type='OccludedDuke', data_root=data_root))
val_dataloader = dict(dataset=dict(type='OccludedDuke', data_root=data_root))
test_dataloader = dict(dataset=dict(type='OccludedDuke', data_root=data_root))
