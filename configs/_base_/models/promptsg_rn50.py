# PromptSG on CLIP RN50 (ModifiedResNet): the ViT-B/16 model with the RN50 image tower.
_base_ = ['./promptsg_vit_b16.py']

model = dict(backbone=dict(type='CLIPResNet', arch='RN50'))
