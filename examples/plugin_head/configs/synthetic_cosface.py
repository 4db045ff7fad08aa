# The quick-start PromptSG with the plugin's CosFace head and loss in place of the linear ID head.
# `custom_imports` imports the plugin package, so it works whether or not it is pip-installed
# (it must be importable: installed, or examples/plugin_head on PYTHONPATH).
_base_ = ['../../../configs/quickstart/synthetic_promptsg.py']

custom_imports = dict(imports=['promptsg_plugin_head'], allow_failed_imports=False)

model = dict(
    head=dict(_delete_=True, type='CosFaceHead', scale=30.0, margin=0.35),
    losses=dict(
        _delete_=True,
        cosface=dict(type='CosFaceLoss', inputs=('logits', 'pid')),
        triplet=dict(type='TripletLoss', margin=0.3),
        supcon=dict(type='SupConLoss', temperature=0.07, loss_weight=0.5),
    ),
)
