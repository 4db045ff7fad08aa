_base_ = './v2.py'
remark = 'Cross-entropy off: a purely contrastive objective, triplet + SupCon.'

model = dict(
    losses=dict(
        _delete_=True,
        triplet=dict(type='TripletLoss', margin=0.3),
        supcon=dict(type='SupConLoss', temperature=0.07, loss_weight=0.5),
    ),
    loss_balancer=dict(terms=['loss_triplet', 'loss_supcon']),
)
