"""CLIP-ReID: stage 1 trains only the prompts, stage 2 encodes each identity once and never
updates the prompts; the prompt learner's tokens reach the text encoder."""

from __future__ import annotations

import pytest
import torch
from mmengine.dataset import default_collate
from mmengine.registry import DefaultScope

from promptsg.datasets.synthetic import SyntheticReID
from promptsg.errors import ConfigError
from promptsg.registry import MODELS, OPTIM_WRAPPER_CONSTRUCTORS, PROMPT_MODULES

IMG_SIZE = (64, 32)
NUM_IDS = 4


def build(**overrides):
    cfg = dict(
        type='CLIPReID',
        num_classes=NUM_IDS,
        backbone=dict(type='CLIPViT', arch='tiny-vit', img_size=IMG_SIZE, pretrained=None),
        prompt_learner=dict(type='IdentityPromptLearner', num_tokens=4),
        neck=dict(type='BNNeck'),
        head=dict(type='LinearClassifier'),
        losses=dict(
            ce=dict(type='CrossEntropyLoss', label_smoothing=0.1, loss_weight=0.25),
            triplet=dict(type='TripletLoss', margin=0.3),
            i2t_ce=dict(type='ImageToTextCELoss', label_smoothing=0.1),
        ),
        text_batch_size=3,
    )
    cfg.update(overrides)
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('promptsg'):
        return MODELS.build(cfg)


def optim(model):
    cfg = dict(
        prompt=dict(optimizer=dict(type='Adam', lr=1e-2), params=['prompt_learner.']),
        image=dict(optimizer=dict(type='Adam', lr=1e-3), exclude=['prompt_learner.']),
    )
    constructor = OPTIM_WRAPPER_CONSTRUCTORS.build(
        dict(type='StageOptimWrapperConstructor', optim_wrapper_cfg=cfg)
    )
    return constructor(model)


@pytest.fixture(scope='module')
def data() -> dict:
    """8 synthetic images, 2 per identity, 2 cameras, as the data loader yields them."""
    dataset = SyntheticReID(
        split='train',
        num_train_ids=NUM_IDS,
        images_per_id=2,
        img_size=IMG_SIZE,
        seed=0,
        pipeline=[dict(type='LoadImage'), dict(type='PackReIDInputs')],
    )
    return default_collate([dataset[i] for i in range(len(dataset))])


def snapshot(module) -> dict:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def changed(before: dict, module) -> list[str]:
    after = module.state_dict()
    return [k for k in before if not torch.equal(before[k], after[k])]


class CallCounter:
    """Counts the text encoder's calls and the prompts (rows) it encodes."""

    def __init__(self, text_encoder) -> None:
        self.calls = self.rows = 0
        original = text_encoder.encode_embeddings

        def counted(embeds, eot):
            self.calls += 1
            self.rows += len(embeds)
            return original(embeds, eot)

        text_encoder.encode_embeddings = counted


def test_stage1_step_changes_only_the_prompts(data):
    model = build()
    wrapper = optim(model)
    wrapper.activate('prompt')
    model.set_stage('prompt')
    model.train()
    image = snapshot(model.backbone.visual)
    text = snapshot(model.backbone.text_encoder)
    rest = snapshot(model.neck) | {f'head.{k}': v for k, v in snapshot(model.head).items()}
    prompts = model.prompt_learner.identity_ctx.detach().clone()
    for _ in range(2):
        model.train_step(data, wrapper)
    assert changed(image, model.backbone.visual) == []  # bit-identical image encoder
    assert changed(text, model.backbone.text_encoder) == []  # and text encoder
    after = snapshot(model.neck) | {f'head.{k}': v for k, v in snapshot(model.head).items()}
    assert [k for k in rest if not torch.equal(rest[k], after[k])] == []
    assert not torch.equal(prompts, model.prompt_learner.identity_ctx)


def test_stage1_uses_cached_image_features_without_the_backbone(data):
    model = build()
    model.set_stage('prompt', feature_loader=[data])
    assert len(model._img_cache) == len(data['inputs'])
    calls = []
    model.backbone.visual.register_forward_hook(lambda *a: calls.append(1))
    wrapper = optim(model)
    wrapper.activate('prompt')
    model.train()
    log = model.train_step(data, wrapper)
    assert calls == [] and log['loss_i2t_t2i'] > 0


def test_stage2_encodes_each_identity_once_and_never_updates_prompts(data):
    model = build()
    counter = CallCounter(model.backbone.text_encoder)
    wrapper = optim(model)
    model.set_stage('image')
    assert counter.rows == NUM_IDS and counter.calls == 2  # 4 ids in chunks of 3
    assert model.text_bank.shape == (NUM_IDS, model.backbone.embed_dim)
    wrapper.activate('image')
    model.train()
    prompts = snapshot(model.prompt_learner)
    image = snapshot(model.backbone.visual)
    for _ in range(3):
        log = model.train_step(data, wrapper)
    assert counter.rows == NUM_IDS  # no text-encoder call per step
    assert changed(prompts, model.prompt_learner) == []
    assert changed(image, model.backbone.visual) != []
    assert {'loss_ce', 'loss_triplet', 'loss_i2t_ce'} <= set(log)


def test_text_bank_is_each_identitys_prompt_feature(data):
    model = build()
    model.set_stage('image')
    with torch.no_grad():
        one = model.prompt_learner(torch.tensor([2]), model.backbone.text_encoder)
    torch.testing.assert_close(model.text_bank[2:3], one.float())


def test_prompt_learner_tokens_and_shared_context():
    model = build(prompt_learner=dict(type='IdentityPromptLearner', num_shared_ctx=2))
    learner, text_encoder = model.prompt_learner, model.backbone.text_encoder
    ids, start = learner.token_ids(text_encoder)
    x_id = text_encoder.tokenize(['X'])[0, 1].item()
    assert ids[0, start : start + 6].tolist() == [x_id] * 6  # 2 shared + 4 identity tokens
    assert ids[0, start + 6] != x_id
    a = learner(torch.tensor([0, 1]), text_encoder)
    assert not torch.allclose(a[0], a[1])  # identities differ through their own tokens
    learner(torch.tensor([0]), text_encoder).sum().backward()
    assert learner.shared_ctx.grad.abs().sum() > 0
    assert learner.identity_ctx.grad[0].abs().sum() > 0
    assert learner.identity_ctx.grad[1:].abs().sum() == 0


def test_bad_configs():
    with pytest.raises(ConfigError, match='exactly one'):
        PROMPT_MODULES.build(
            dict(type='IdentityPromptLearner', num_classes=2, token_dim=8, template='A person.')
        )
    with pytest.raises(ConfigError, match='stage'):
        build(stage='text')
    with pytest.raises(ConfigError, match='with_text'):
        build(
            backbone=dict(
                type='CLIPViT', arch='tiny-vit', img_size=IMG_SIZE, pretrained=None, with_text=False
            )
        )


OFFICIAL_LOSSES = dict(
    ce=dict(type='CrossEntropyLoss', label_smoothing=0.1, loss_weight=0.25),
    ce_pre=dict(
        type='CrossEntropyLoss', label_smoothing=0.1, loss_weight=0.25, inputs=('logits_pre', 'pid')
    ),
    triplet=dict(type='TripletLoss', margin=0.3),
    tri_pre=dict(type='TripletLoss', margin=0.3, inputs=('feat_pre', 'pid')),
    tri_inner=dict(type='TripletLoss', margin=0.3, inputs=('feat_inner', 'pid')),
    i2t_ce=dict(type='ImageToTextCELoss', label_smoothing=0.1),
)
BACKBONES = {
    'vit': dict(type='CLIPViT', arch='tiny-vit', img_size=IMG_SIZE, pretrained=None),
    'rn': dict(
        type='CLIPResNet', arch='tiny-rn', img_size=IMG_SIZE, pretrained=None, last_stride=1
    ),
}


@pytest.mark.parametrize('arch', sorted(BACKBONES))
def test_official_heads_train_both_branches_and_retrieve_with_their_concatenation(data, arch):
    model = build(backbone=BACKBONES[arch], official_heads=True, losses=OFFICIAL_LOSSES)
    dims = model.backbone.branch_dims
    assert model.neck_pre.bn.num_features == dims['pre_proj']
    assert model.head_pre.fc.in_features == dims['pre_proj']
    wrapper = optim(model)
    model.set_stage('image')
    wrapper.activate('image')
    model.train()
    pre_head = snapshot(model.head_pre)
    log = model.train_step(data, wrapper)
    expected = {'loss_ce', 'loss_ce_pre', 'loss_triplet', 'loss_tri_pre', 'loss_tri_inner'}
    assert expected | {'loss_i2t_ce'} <= set(log)
    assert changed(pre_head, model.head_pre) != []  # the second classifier trains
    assert 'neck_pre' not in model.unused_in_training()

    model.eval()
    batch = model.data_preprocessor(data, False)
    with torch.no_grad():
        feat = model(batch['inputs'], batch['data_samples'], mode='tensor')
        branches = model.backbone.forward_branches(batch['inputs'])
    width = dims['pre_proj'] + model.backbone.embed_dim
    assert feat.shape == (len(data['inputs']), width)
    whole = torch.cat([branches['pre_proj'], branches['global']], dim=-1)
    torch.testing.assert_close(feat, torch.nn.functional.normalize(whole, dim=-1))

    model.test_cfg['neck_feat'] = 'after'
    with torch.no_grad():
        after = model(batch['inputs'], batch['data_samples'], mode='tensor')
        necks = torch.cat(
            [model.neck_pre(branches['pre_proj']), model.neck(branches['global'])], dim=-1
        )
    torch.testing.assert_close(after, torch.nn.functional.normalize(necks, dim=-1))


def test_without_official_heads_the_retrieval_feature_is_the_projected_one(data):
    model = build()
    assert model.neck_pre is None and model.head_pre is None
    model.eval()
    batch = model.data_preprocessor(data, False)
    with torch.no_grad():
        feat = model(batch['inputs'], batch['data_samples'], mode='tensor')
    assert feat.shape[1] == model.backbone.embed_dim


def test_official_heads_need_a_neck_and_a_head():
    with pytest.raises(ConfigError, match='official_heads needs model.neck and model.head'):
        build(official_heads=True, neck=None)
