# CLIP-ReID (Li et al., AAAI 2023) on CLIP ViT-B/16, as the official code trains it
# (Syliz517/CLIP-ReID, configs/person/vit_clipreid.yml): prompts "A photo of a X X X X person."
# with 4 learned tokens per identity; stage 1 trains them with the image->text + text->image
# contrastive losses (raw features, temperature 1); stage 2 trains the image encoder with
# 0.25 x ID (label smoothing 0.1) + triplet (margin 0.3) + image->text CE against the cached text
# features, with the official two-branch heads (official_heads): a BNNeck + classifier on the
# projected CLS and another on the 768-d CLS before the projection (ID loss on both), triplet on
# the projected CLS, the pre-projection CLS and the raw CLS after block 11, and retrieval with
# [pre-projection, projected] (1280-d, L2-normalised). Losses are summed, as in the official code.
model = dict(
    type='CLIPReID',
    num_classes=None,  # None: build_runner sets it from the training set's identities
    backbone=dict(
        type='CLIPViT',
        arch='ViT-B-16',
        pretrained='openai',  # an open_clip tag or a local .pt/.bin/.safetensors file
        img_size=(256, 128),  # (H, W); the 2-D positional embedding is resized to it
        unfreeze_blocks=-1,
    ),
    prompt_learner=dict(
        type='IdentityPromptLearner', template='A photo of a {} person.', num_tokens=4
    ),
    prompt_losses=dict(i2t_t2i=dict(type='ImageTextContrastiveLoss', temperature=1.0)),
    neck=dict(type='BNNeck', freeze_bias=True),  # the official bottlenecks' bias is frozen
    head=dict(type='LinearClassifier'),  # no bias, N(0, 0.001^2), as the official classifiers
    official_heads=True,
    losses=dict(
        ce=dict(type='CrossEntropyLoss', label_smoothing=0.1, loss_weight=0.25),
        ce_pre=dict(
            type='CrossEntropyLoss',
            label_smoothing=0.1,
            loss_weight=0.25,
            inputs=('logits_pre', 'pid'),
        ),
        triplet=dict(type='TripletLoss', margin=0.3),
        tri_pre=dict(type='TripletLoss', margin=0.3, inputs=('feat_pre', 'pid')),
        tri_inner=dict(type='TripletLoss', margin=0.3, inputs=('feat_inner', 'pid')),
        i2t_ce=dict(type='ImageToTextCELoss', label_smoothing=0.1),
    ),
)
