# Stage-3 chronology, ViT-B/16 v1: the baseline every later version changes.
_base_ = [
    '../_base_/datasets/hands11k_dorsal_right.py',
    '../_base_/models/promptsg_vit_b16.py',
    '../_base_/schedules/constant.py',
    '../_base_/default_runtime.py',
]
remark = (
    'Baseline PromptSG: linear classifier, CE + triplet (SupCon off); simple inversion, '
    '1 cross-attention layer; AdamW lr 1e-4 visual / 1e-5 rest, grad clip 5; validation on '
    'the retrieval feature (ID logits ignored); dropout 0.1 on the feature.'
)

# AdamW, lr_clip_visual 1e-4 / lr_modules 1e-5, wd 5e-4, grad clip 5, constant lr, 20 epochs
# come from schedules/constant.py; early stopping on validation mAP from the runtime.
default_hooks = dict(early_stopping=dict(patience=3))
