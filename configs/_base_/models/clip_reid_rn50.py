# CLIP-ReID on CLIP RN50 (official configs/person/cnn_clipreid.yml): as clip_reid_vit_b16.py with
# the ResNet image encoder (attention-pool output, 1024-d) and ID loss weight 1.0.
_base_ = ['./clip_reid_vit_b16.py']

model = dict(
    backbone=dict(type='CLIPResNet', arch='RN50'),
    losses=dict(ce=dict(loss_weight=1.0)),
)
