"""ReIDBaseline: backbone → neck → head with named losses, the shared training and prediction
path of every ReID model."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from mmengine.registry import DefaultScope

from promptsg.errors import ConfigError
from promptsg.registry import MODELS

IMG_SIZE = (64, 32)
NUM_IDS = 4


def build(**overrides):
    cfg = dict(
        type='ReIDBaseline',
        num_classes=NUM_IDS,
        backbone=dict(type='CLIPViT', arch='tiny-vit', img_size=IMG_SIZE, with_text=False),
        neck=dict(type='BNNeck', bnneck_dim=16),
        head=dict(type='LinearClassifier'),
        losses=dict(
            ce=dict(type='CrossEntropyLoss', label_smoothing=0.1),
            triplet=dict(type='TripletLoss', margin=0.3),
        ),
    )
    cfg.update(overrides)
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('promptsg'):
        return MODELS.build(cfg)


@pytest.fixture(scope='module')
def data() -> dict:
    g = torch.Generator().manual_seed(0)
    inputs = torch.randint(0, 256, (8, 3, *IMG_SIZE), dtype=torch.uint8, generator=g)
    samples = {
        'pid': torch.arange(8) // 2,
        'camid': torch.arange(8) % 2,
        'sample_idx': torch.arange(8),
        'is_query': torch.arange(8) < 2,
        'aspect': [''] * 8,
    }
    return {'inputs': inputs, 'data_samples': samples}


def prepared(model, data, training):
    return model.data_preprocessor({**data, 'data_samples': dict(data['data_samples'])}, training)


def test_losses_are_named_and_the_head_sees_the_neck(data):
    model = build()
    assert model.neck.in_channels == model.backbone.embed_dim
    assert model.head.in_channels == 16 and model.head.num_classes == NUM_IDS
    model.train()
    losses = model(**prepared(model, data, True), mode='loss')
    assert set(losses) == {'loss_ce', 'loss_triplet'}
    assert all(v.ndim == 0 and torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    assert model.neck.reduction.weight.grad.abs().sum() > 0
    assert model.head.fc.weight.grad.abs().sum() > 0


def test_init_weights_keeps_the_clip_weights():
    """``Runner.train()`` calls ``init_weights()``; it must not re-initialise CLIP."""
    model = build()
    before = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    model.init_weights()
    after = model.backbone.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


@pytest.mark.parametrize('neck_feat', ['before', 'after'])
def test_retrieval_feature_before_or_after_the_neck(data, neck_feat):
    model = build(test_cfg=dict(neck_feat=neck_feat)).eval()
    batch = prepared(model, data, False)
    with torch.no_grad():
        feat = model(**batch, mode='tensor')
        global_feat, _ = model.backbone(batch['inputs'])
    expected = model.neck(global_feat) if neck_feat == 'after' else global_feat
    torch.testing.assert_close(feat, F.normalize(expected, dim=-1))
    assert feat.shape[1] == (16 if neck_feat == 'after' else model.backbone.embed_dim)


def test_predict_records(data):
    model = build().eval()
    with torch.no_grad():
        records = model.test_step(dict(data))
    assert [r['pid'] for r in records] == [0, 0, 1, 1, 2, 2, 3, 3]
    assert [r['camid'] for r in records] == [0, 1] * 4
    assert [r['is_query'] for r in records] == [True, True] + [False] * 6
    assert [r['sample_idx'] for r in records] == list(range(8))
    norms = torch.stack([r['feat'] for r in records]).norm(dim=-1)
    torch.testing.assert_close(norms, torch.ones(8))


def test_feature_dropout_in_training_only(data):
    model = build(feat_dropout=0.5, neck=None, losses=dict(tri=dict(type='TripletLoss')))
    seen = []
    model.feat_dropout.register_forward_hook(lambda m, i, o: seen.append(o))
    model.train()
    model(**prepared(model, data, True), mode='loss')
    assert len(seen) == 1 and 0.2 < (seen[0] == 0).float().mean() < 0.8
    model.eval()
    batch = prepared(model, data, False)
    with torch.no_grad():
        torch.testing.assert_close(model(**batch, mode='tensor'), model(**batch, mode='tensor'))


def test_center_loss_gets_class_count_and_width(data):
    model = build(losses=dict(center=dict(type='CenterLoss', loss_weight=0.001)))
    center = model.losses['center']
    params = dict(center.named_parameters())
    assert any(p.shape == (NUM_IDS, model.feat_dim) for p in params.values())


def test_loss_balancer_reweights_the_model_losses(data):
    balancer = dict(type='UncertaintyWeighting', terms=['loss_ce', 'loss_triplet'])
    model = build(loss_balancer=balancer)
    assert 'loss_balancer.log_vars' in dict(model.named_parameters())
    model.train()
    losses = model(**prepared(model, data, True), mode='loss')
    assert {'loss_ce', 'loss_triplet', 'loss_uncertainty_reg'} <= set(losses)
    sum(v for k, v in losses.items() if 'loss' in k).backward()
    assert model.loss_balancer.log_vars.grad.abs().sum() > 0


@pytest.mark.parametrize(
    'overrides, match',
    [
        (dict(losses={}), 'model.losses is empty'),
        (
            dict(losses=dict(odd=dict(type='FixedWeights'))),
            r"losses.odd: loss 'FixedWeights' needs inputs",
        ),
        (
            dict(test_cfg=dict(neck_feat='middle')),
            r"neck_feat 'middle' is not one of \('before', 'after'\)",
        ),
        (dict(neck=None, test_cfg=dict(neck_feat='after')), "neck_feat='after' needs a neck"),
    ],
)
def test_config_mistakes_are_config_errors(overrides, match):
    with pytest.raises(ConfigError, match=match):
        build(**overrides)


def test_loss_needing_text_features_names_what_is_missing(data):
    model = build(losses=dict(supcon=dict(type='SupConLoss')))
    model.train()
    with pytest.raises(ConfigError, match=r"losses.supcon needs \['text_feat'\]"):
        model(**prepared(model, data, True), mode='loss')


def test_unknown_mode_names_choices(data):
    model = build()
    with pytest.raises(ConfigError, match=r"mode 'train' is not one of"):
        model(data['inputs'].float(), data['data_samples'], mode='train')


def test_init_weights_with_an_init_cfg_keeps_the_backbone_weights():
    """The Runner calls model.init_weights(); a model-level init_cfg must not reach CLIP."""
    model = build(init_cfg=dict(type='Normal', layer='Linear', std=0.5))
    backbone = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    head = model.head.fc.weight.detach().clone()
    model.init_weights()
    for name, value in model.backbone.state_dict().items():
        assert torch.equal(value, backbone[name]), name
    assert not torch.equal(model.head.fc.weight, head)  # the init_cfg did run on the new parts


def test_two_losses_of_one_type_log_under_their_config_keys(data):
    losses = dict(
        ce=dict(type='CrossEntropyLoss'),
        tri_feat=dict(type='TripletLoss', margin=0.3),
        tri_img=dict(type='TripletLoss', margin=0.3, inputs=('img_feat', 'pid')),
    )
    model = build(losses=losses, feat_dropout=0.5)
    model.train()
    out = model(**prepared(model, data, True), mode='loss')
    assert set(out) == {'loss_ce', 'loss_tri_feat', 'loss_tri_img'}
    # dropout on 'feat' only: the two triplet terms see different features
    assert not torch.isclose(out['loss_tri_feat'], out['loss_tri_img'])


def test_two_losses_naming_one_term_are_a_config_error():
    losses = dict(
        tri_a=dict(type='TripletLoss', loss_name='loss_triplet'),
        tri_b=dict(type='TripletLoss', loss_name='loss_triplet'),
    )
    with pytest.raises(ConfigError, match="tri_b and losses.tri_a both log as 'loss_triplet'"):
        build(losses=losses)
    with pytest.raises(ConfigError, match="losses.loss_ce and losses.ce both log as 'loss_ce'"):
        build(losses=dict(ce=dict(type='CrossEntropyLoss'), loss_ce=dict(type='CrossEntropyLoss')))


def test_init_weights_holds_no_second_copy_of_the_backbone(monkeypatch):
    model = build(init_cfg=dict(type='Normal', layer='Linear', std=0.5))
    keys = list(model.state_dict())
    cloned = []
    real_clone = torch.Tensor.clone
    monkeypatch.setattr(
        torch.Tensor,
        'clone',
        lambda t, *a, **kw: cloned.append(t.numel()) or real_clone(t, *a, **kw),
    )
    model.init_weights()
    monkeypatch.undo()
    backbone_numel = sum(v.numel() for v in model.backbone.state_dict().values())
    assert sum(cloned) < 0.01 * backbone_numel
    assert list(model.state_dict()) == keys  # module order kept
