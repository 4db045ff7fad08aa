# CLIP-ReID on CLIP RN50, 11k Hands dorsal right, so that the hand chronology can be
# compared with it: the hand protocol of SPEC §4 (batch 32 = 8 ids x 4, 224x224, validation on one
# held-out image per training id, 10 Monte-Carlo test splits) and CLIP-ReID's two-stage recipe;
# the identity prompt reads "A photo of a X X X X dorsal right hand."
_base_ = [
    '../_base_/datasets/hands11k_dorsal_right.py',
    '../_base_/models/clip_reid_rn50.py',
    '../_base_/schedules/clip_reid_rn50.py',
]

model = dict(
    backbone=dict(img_size=(224, 224)),
    prompt_learner=dict(template='A photo of a {} {aspect} hand.', aspect='dorsal right'),
)
