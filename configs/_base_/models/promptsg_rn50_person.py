# PromptSG on CLIP RN50 (ModifiedResNet) for person ReID: the ViT-B/16 person model with the
# RN50 image tower (1024-d global feature; the attention-pool grid resized in 2-D).
_base_ = ['./promptsg_vit_b16_person.py']

model = dict(backbone=dict(type='CLIPResNet', arch='RN50'))
