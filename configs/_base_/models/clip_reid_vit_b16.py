# CLIP-ReID (Li et al., AAAI 2023) on CLIP ViT-B/16, as the official code trains it
# (Syliz517/CLIP-ReID, configs/person/vit_clipreid.yml): prompts "A photo of a X X X X person."
# with 4 learned tokens per identity; stage 1 trains them with the image->text + text->image
# contrastive losses (raw features, temperature 1); stage 2 trains the image encoder with
# 0.25 x ID (label smoothing 0.1) + triplet (margin 0.3) + image->text CE against the cached text
# features. The retrieval feature is the projected CLS feature (the official code concatenates
# the 768-d pre-projection CLS as well; see docs/clip_reid.md).
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
    neck=dict(type='BNNeck'),
    head=dict(type='LinearClassifier'),
    losses=dict(
        ce=dict(type='CrossEntropyLoss', label_smoothing=0.1, loss_weight=0.25),
        triplet=dict(type='TripletLoss', margin=0.3),
        i2t_ce=dict(type='ImageToTextCELoss', label_smoothing=0.1),
    ),
)
