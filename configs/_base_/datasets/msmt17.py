# MSMT17 in its native layout (SPEC §7): train/ + test/ (V1) or mask_train_v2/ + mask_test_v2/
# (V2, found by version='auto') with list_{train,val,query,gallery}.txt; 1,041 training ids, 15
# cameras. As the papers do, training uses the train and val lists together
# (train_with_val=True); our validation is then carved from those training ids (held-out ids,
# seeded), never from the test lists. Augmentation and loaders as in market1501.py.
_base_ = ['./market1501.py']

data_root = 'data/msmt17'
msmt17 = dict(type='MSMT17', data_root=data_root, version='auto', train_with_val=True)
train_dataloader = dict(dataset=msmt17)
val_dataloader = dict(dataset=msmt17)
test_dataloader = dict(dataset=msmt17)
