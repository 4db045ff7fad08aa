# PromptSG on CLIP RN50 for person ReID: the paper model of promptsg_paper_vit_b16.py with the
# RN50 tower at last_stride=1 (CLIP-ReID: a 16x8 attention-pool grid at 256x128). Its visual
# states img_state_1/2 are the attention pool over the outputs of layer4's blocks before the
# last (the residual counterpart of ViT's intermediate CLS states; docs/architecture.md).
_base_ = ['./promptsg_paper_vit_b16.py']

model = dict(backbone=dict(type='CLIPResNet', arch='RN50', last_stride=1))
