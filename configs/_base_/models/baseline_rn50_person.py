# The plain CLIP fine-tuning baseline on CLIP RN50: the ViT-B/16 baseline with the RN50 tower.
_base_ = ['./baseline_vit_b16_person.py']

model = dict(backbone=dict(type='CLIPResNet', arch='RN50'))
