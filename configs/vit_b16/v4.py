_base_ = './v3.py'
remark = (
    'BNNeck (reduction to 256 + BN) and an ArcFace head (s 30, m 0.5); the ArcFace loss takes '
    "the ID loss's place: ArcFace + triplet + SupCon."
)

model = dict(
    neck=dict(type='BNNeck', bnneck_dim=256),
    head=dict(_delete_=True, type='ArcFaceHead', scale=30.0, margin=0.5),
    losses=dict(arcface=dict(type='ArcFaceLoss')),
    loss_balancer=dict(terms=['loss_arcface', 'loss_triplet', 'loss_supcon']),
)
