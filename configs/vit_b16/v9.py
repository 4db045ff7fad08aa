_base_ = './v8.py'
remark = 'Longer training: 60 epochs, early-stop patience 10.'

train_cfg = dict(max_epochs=60)
default_hooks = dict(early_stopping=dict(patience=10))
