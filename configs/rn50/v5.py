_base_ = './v4.py'
remark = (
    'Paper-faithful inversion (3 layers + BN); MIM with 1 cross- and 2 self-attention layers; '
    'composed prompt at validation and test too; template "A photo of a {} {aspect} hand."'
)

model = dict(
    inversion=dict(variant='paper'),
    prompt=dict(template='A photo of a {} {aspect} hand.'),
    interaction=dict(num_self_layers=2),
    test_cfg=dict(prompt='composed'),
)
