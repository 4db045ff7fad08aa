_base_ = './v6.py'
remark = 'ID loss removed again (triplet + SupCon); the BNNeck and ArcFace head stay, unused by the losses.'

model = dict(
    losses=dict(
        _delete_=True,
        triplet=dict(type='TripletLoss', margin=0.3),
        supcon=dict(type='SupConLoss', temperature=0.07, loss_weight=0.5),
    ),
    loss_balancer=dict(terms=['loss_triplet', 'loss_supcon']),
)
