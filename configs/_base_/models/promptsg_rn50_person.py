# PromptSG on CLIP RN50 (ModifiedResNet) for person ReID: the ViT-B/16 person model with the
# RN50 image tower at last_stride=1 (CLIP-ReID: a 16x8 attention-pool grid at 256x128, resized in
# 2-D; 1024-d global feature). Its visual states img_state_1/2 are the attention pool over the
# outputs of layer4's blocks before the last (the residual counterpart of ViT's intermediate CLS
# states; docs/architecture.md).
_base_ = ['./promptsg_vit_b16_person.py']

model = dict(backbone=dict(type='CLIPResNet', arch='RN50', last_stride=1))
