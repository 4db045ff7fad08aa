# PromptSG on CLIP ViT-B/16 for person ReID, as the paper describes it (SPEC §1, §4.3 following
# CLIP-ReID): the paper inversion network (3 layers, 512 hidden, BN last), "A photo of a {} person.",
# MIM with one cross-attention and two self-attention blocks, BNNeck + linear ID classifier,
# L = triplet + ID + 0.5 * SupCon, with the triplet loss on the MIM output AND on the image
# encoder's last three visual states (the final global feature and the CLS states one and two
# blocks before it, each through ln_post + proj; docs/losses.md); the composed prompt at
# validation and test. The hand chronology keeps its own base (promptsg_vit_b16.py).
model = dict(
    type='PromptSG',
    num_classes=None,  # None: build_runner sets it from the training set's identities
    backbone=dict(
        type='CLIPViT',
        arch='ViT-B-16',
        pretrained='openai',  # an open_clip tag or a local .pt/.bin/.safetensors file
        img_size=(256, 128),  # (H, W); the 2-D positional embedding is resized to it
        unfreeze_blocks=-1,
    ),
    inversion=dict(type='InversionNetwork', variant='paper', hidden_dim=512),
    prompt=dict(type='PromptComposer', template='A photo of a {} person.'),
    fixed_prompt=dict(type='FixedPrompt', template='A photo of a person.'),
    interaction=dict(
        type='MultimodalInteraction', num_cross_layers=1, num_self_layers=2, num_heads=8
    ),
    neck=dict(type='BNNeck'),
    head=dict(type='LinearClassifier'),
    losses=dict(
        ce=dict(type='CrossEntropyLoss', label_smoothing=0.1),
        triplet=dict(type='TripletLoss', margin=0.3),  # the MIM output (the retrieval feature)
        tri_img=dict(type='TripletLoss', margin=0.3, inputs=('img_feat', 'pid')),
        tri_img_1=dict(type='TripletLoss', margin=0.3, inputs=('img_state_1', 'pid')),
        tri_img_2=dict(type='TripletLoss', margin=0.3, inputs=('img_state_2', 'pid')),
        supcon=dict(type='SupConLoss', temperature=0.07, loss_weight=0.5),
    ),
    test_cfg=dict(prompt='composed'),
)
