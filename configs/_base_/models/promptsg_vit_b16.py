# PromptSG on CLIP ViT-B/16 for hands, as the stage-3 chronology starts it (v1): simple inversion,
# one cross-attention layer, linear ID classifier, CE + triplet. Later versions change it.
model = dict(
    type='PromptSG',
    num_classes=None,  # None: build_runner sets it from the training set's identities
    backbone=dict(
        type='CLIPViT',
        arch='ViT-B-16',
        pretrained='openai',  # an open_clip tag or a local .pt/.bin/.safetensors file
        img_size=(224, 224),
        unfreeze_blocks=-1,
    ),
    inversion=dict(type='InversionNetwork', variant='simple'),
    prompt=dict(
        type='PromptComposer',
        template="A detailed photo of {}'s {aspect} hand for identification.",
    ),
    fixed_prompt=dict(type='FixedPrompt', template="A photo of a person's {aspect} hand."),
    interaction=dict(
        type='MultimodalInteraction', num_cross_layers=1, num_self_layers=0, num_heads=8
    ),
    head=dict(type='LinearClassifier'),
    losses=dict(
        ce=dict(type='CrossEntropyLoss', label_smoothing=0.1),
        triplet=dict(type='TripletLoss', margin=0.3),
    ),
    feat_dropout=0.1,
    test_cfg=dict(prompt='fixed'),
)
