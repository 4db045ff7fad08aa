# The plain CLIP fine-tuning baseline for person ReID: the CLIP ViT-B/16 image encoder + BNNeck +
# linear ID classifier, CE (label smoothing 0.1) + batch-hard triplet (margin 0.3); no prompt
# path, no text encoder. The comparison PromptSG's gains are measured against.
model = dict(
    type='ReIDBaseline',
    num_classes=None,  # None: build_runner sets it from the training set's identities
    backbone=dict(
        type='CLIPViT',
        arch='ViT-B-16',
        pretrained='openai',  # an open_clip tag or a local .pt/.bin/.safetensors file
        img_size=(256, 128),  # (H, W); the 2-D positional embedding is resized to it
        unfreeze_blocks=-1,
        with_text=False,
    ),
    neck=dict(type='BNNeck'),
    head=dict(type='LinearClassifier'),
    losses=dict(
        ce=dict(type='CrossEntropyLoss', label_smoothing=0.1),
        triplet=dict(type='TripletLoss', margin=0.3),
    ),
)
