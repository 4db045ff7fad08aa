# CLIP-ReID on CLIP RN50 (official configs/person/cnn_clipreid.yml): as clip_reid_vit_b16.py with
# the ResNet image encoder at last stride 1 (the official layer4 keeps the resolution: a 16x8 grid
# at 256x128), ID loss weight 1.0; the two branches are the attention-pool output (1024-d) and
# layer4 average-pooled (2048-d), the extra triplet term takes layer3 average-pooled (1024-d), and
# retrieval uses [layer4 pooled, attention pool] (3072-d).
_base_ = ['./clip_reid_vit_b16.py']

model = dict(
    backbone=dict(type='CLIPResNet', arch='RN50', last_stride=1),
    losses=dict(ce=dict(loss_weight=1.0), ce_pre=dict(loss_weight=1.0)),
)
