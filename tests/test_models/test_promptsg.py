"""PromptSG: the prompt path has an effect and a gradient (SPEC §5.1), every trainable part is
optimised (§5.5), dropout runs in training only (§5.6), and prediction follows the contract."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from mmengine.dataset import default_collate
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope

from promptsg.datasets.synthetic import SyntheticReID
from promptsg.errors import ConfigError
from promptsg.registry import MODELS, OPTIM_WRAPPER_CONSTRUCTORS, PROMPT_MODULES

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = ROOT / 'configs' / 'quickstart' / 'synthetic_promptsg.py'
IMG_SIZE = (64, 64)  # a 2×2 patch grid: the MIM attends over 1 + 4 visual tokens
NUM_IDS = 4


def tiny_cfg(**overrides) -> dict:
    cfg = dict(
        type='PromptSG',
        num_classes=NUM_IDS,
        backbone=dict(type='CLIPViT', arch='tiny-vit', img_size=IMG_SIZE, pretrained=None),
        inversion=dict(type='InversionNetwork', variant='paper', hidden_dim=32),
        prompt=dict(type='PromptComposer', template='A photo of a {} person.'),
        fixed_prompt=dict(type='FixedPrompt', template='A photo of a person.'),
        interaction=dict(type='MultimodalInteraction', num_heads=4, num_self_layers=1),
        neck=dict(type='BNNeck', bnneck_dim=32),
        head=dict(type='LinearClassifier'),
        losses=dict(
            ce=dict(type='CrossEntropyLoss', label_smoothing=0.1),
            triplet=dict(type='TripletLoss', margin=0.3),
            supcon=dict(type='SupConLoss', temperature=0.07, loss_weight=0.5),
        ),
    )
    cfg.update(overrides)
    return cfg


def build(**overrides):
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('promptsg'):
        return MODELS.build(tiny_cfg(**overrides))


@pytest.fixture(scope='module')
def batch() -> dict:
    """8 synthetic images, 2 per identity: the uint8 batch the data loader yields."""
    dataset = SyntheticReID(
        split='train',
        num_train_ids=NUM_IDS,
        images_per_id=2,
        img_size=IMG_SIZE,
        pipeline=[dict(type='LoadImage'), dict(type='PackReIDInputs')],
    )
    return default_collate([dataset[i] for i in range(len(dataset))])


def preprocess(model, batch: dict, training: bool) -> dict:
    return model.data_preprocessor(copy.deepcopy(batch), training)


def total_loss(losses: dict) -> torch.Tensor:
    return sum(v for k, v in losses.items() if 'loss' in k)


def snapshot(module: torch.nn.Module) -> dict:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def changed(before: dict, module: torch.nn.Module) -> set[str]:
    return {k for k, v in module.state_dict().items() if not torch.equal(before[k], v)}


# -- SPEC §5.1: the prompt path has an effect and a gradient ------------------------------------


def test_training_step_moves_inversion_not_text_encoder(batch):
    model = build()
    with DefaultScope.overwrite_default_scope('promptsg'):
        optim_wrapper = build_optim_wrapper(
            model, dict(optimizer=dict(type='AdamW', lr=1e-3), clip_grad=dict(max_norm=5.0))
        )
    text_before = snapshot(model.backbone.text_encoder)
    inversion_before = snapshot(model.inversion)
    neck_before = snapshot(model.neck)
    log_vars = model.train_step(copy.deepcopy(batch), optim_wrapper)
    assert {'loss', 'loss_ce', 'loss_triplet', 'loss_supcon'} <= set(log_vars)
    assert not changed(text_before, model.backbone.text_encoder)
    weights = {k for k in inversion_before if k.endswith(('weight', 'bias'))}
    assert weights <= changed(inversion_before, model.inversion)
    assert {'reduction.weight', 'bn.weight'} <= changed(neck_before, model.neck)


@pytest.mark.parametrize('loss', ['ce', 'triplet', 'supcon'])
def test_inversion_gradient_flows_through_the_frozen_text_encoder(batch, loss):
    """s* reaches the losses only through the text encoder: a non-zero gradient proves the path."""
    model = build()
    model.train()
    losses = model(**preprocess(model, batch, True), mode='loss')
    losses[f'loss_{loss}'].backward()
    last_linear = f'mlp.{len(model.inversion.mlp) - 2}.bias'  # BatchNorm follows: no effect
    for name, param in model.inversion.named_parameters():
        assert param.grad is not None, name
        if name != last_linear:
            assert param.grad.abs().sum() > 0, name
    text_encoder = model.backbone.text_encoder
    assert not any(p.requires_grad for p in text_encoder.parameters())
    assert all(p.grad is None for p in text_encoder.parameters())


def test_changing_the_template_changes_the_mim_output(batch):
    model = build(test_cfg=dict(prompt='composed')).eval()
    data = preprocess(model, batch, False)
    with torch.no_grad():
        before = model.extract_feat(**data)
        model.prompt = PROMPT_MODULES.build(
            dict(type='PromptComposer', template='A blurry frame of {} walking.')
        )
        after = model.extract_feat(**data)
    torch.testing.assert_close(before['img_feat'], after['img_feat'])
    assert not torch.allclose(before['text_feat'], after['text_feat'], atol=1e-4)
    assert not torch.allclose(before['mim_feat'], after['mim_feat'], atol=1e-4)


def test_changing_s_star_changes_the_mim_output(batch):
    model = build(test_cfg=dict(prompt='composed')).eval()
    data = preprocess(model, batch, False)
    with torch.no_grad():
        before = model.extract_feat(**data)
        # a random shift of every s* (a constant one would vanish in the LayerNorms)
        model.inversion.mlp[-1].bias.add_(torch.randn_like(model.inversion.mlp[-1].bias))
        after = model.extract_feat(**data)
    assert not torch.allclose(before['pseudo_token'], after['pseudo_token'])
    assert not torch.allclose(before['mim_feat'], after['mim_feat'], atol=1e-4)
    assert not torch.allclose(before['feat'], after['feat'], atol=1e-4)


def test_cross_attention_weights_depend_on_the_query(batch):
    model = build(test_cfg=dict(prompt='composed')).eval()
    model.interaction.keep_attention = True
    data = preprocess(model, batch, False)
    with torch.no_grad():
        model.extract_feat(**data)
        first = model.interaction.last_attention.clone()
        model.prompt = PROMPT_MODULES.build(
            dict(type='PromptComposer', template='A blurry frame of {} walking.')
        )
        model.extract_feat(**data)
        second = model.interaction.last_attention
    keys = 1 + model.backbone.num_tokens
    assert keys > 1
    assert first.shape == (len(batch['inputs']), 1, keys)
    assert first.max() < 1
    assert not torch.allclose(first, second, atol=1e-5)


@pytest.mark.parametrize(
    'template', ['A photo of a person.', 'A photo of {} and {}.', 'A photo of a {} {colour}.']
)
def test_template_without_exactly_one_slot_fails_the_model_build(template):
    with pytest.raises(ConfigError) as info:
        build(prompt=dict(type='PromptComposer', template=template))
    assert repr(template) in str(info.value)


# -- SPEC §5.5: every trainable parameter is optimised, the text encoder never -----------------


def _optimised(optim_wrapper) -> list[int]:
    # optimizer.param_groups: mmengine's OptimWrapper.param_groups appends a tensor-free record
    held = [id(p) for group in optim_wrapper.optimizer.param_groups for p in group['params']]
    assert len(held) == len(set(held)), 'a parameter is in two groups'
    return held


def _trainable(model) -> dict[int, str]:
    trainable = {id(p): name for name, p in model.named_parameters() if p.requires_grad}
    for name in (
        'neck.reduction.weight',
        'neck.bn.weight',
        'head.fc.weight',
        'inversion.mlp.0.weight',
    ):
        assert name in trainable.values()
    return trainable


def test_default_constructor_optimises_every_trainable_parameter():
    model = build()
    with DefaultScope.overwrite_default_scope('promptsg'):
        optim_wrapper = build_optim_wrapper(model, dict(optimizer=dict(type='AdamW', lr=1e-3)))
    held = set(_optimised(optim_wrapper))
    assert not [name for i, name in _trainable(model).items() if i not in held]


def test_runner_constructor_from_the_quickstart_config_optimises_every_trainable_parameter(
    tmp_path,
):
    if 'ReIDOptimWrapperConstructor' not in OPTIM_WRAPPER_CONSTRUCTORS.names():
        pytest.skip('ReIDOptimWrapperConstructor is not registered yet')
    from promptsg.engine.config import load_config
    from promptsg.engine.runner import build_runner

    cfg = load_config(
        str(QUICKSTART),
        {
            'model.num_classes': NUM_IDS,
            'model.backbone.img_size': IMG_SIZE,
            'model.neck.bnneck_dim': 32,
        },
    )
    runner = build_runner(cfg, work_dir=str(tmp_path))
    optim_wrapper = runner.build_optim_wrapper(runner.optim_wrapper)
    assert type(optim_wrapper.optimizer).__name__ == 'AdamW'
    model = runner.model
    held = _optimised(optim_wrapper)
    assert set(held) == set(_trainable(model))  # all trainable parameters, nothing else
    text_encoder = {id(p) for p in model.backbone.text_encoder.parameters()}
    assert text_encoder and not text_encoder & set(held)


# -- SPEC §2 inference: the fixed prompt is encoded once -----------------------------------------


def _count_text_encoder_calls(model, monkeypatch) -> list[str]:
    """Outermost calls into the text encoder (encode_text itself calls encode_embeddings)."""
    calls, depth = [], [0]
    text_encoder = model.backbone.text_encoder
    for name in ('encode_text', 'encode_embeddings'):
        real = getattr(text_encoder, name)

        def counted(*args, _real=real, _name=name, **kwargs):
            if not depth[0]:
                calls.append(_name)
            depth[0] += 1
            try:
                return _real(*args, **kwargs)
            finally:
                depth[0] -= 1

        monkeypatch.setattr(text_encoder, name, counted)
    return calls


def test_fixed_prompt_inference_encodes_text_once(batch, monkeypatch):
    model = build(test_cfg=dict(prompt='fixed')).eval()
    calls = _count_text_encoder_calls(model, monkeypatch)
    with torch.no_grad():
        outs = [model.test_step(copy.deepcopy(batch)) for _ in range(3)]
    assert calls == ['encode_text']
    assert all(len(out) == len(batch['inputs']) for out in outs)
    torch.testing.assert_close(outs[0][0]['feat'], outs[2][0]['feat'])


def test_fixed_prompt_cache_is_a_float32_buffer_moved_by_to_and_not_saved(batch):
    model = build(test_cfg=dict(prompt='fixed')).eval()
    with torch.no_grad(), torch.autocast('cpu', dtype=torch.bfloat16):
        model.test_step(copy.deepcopy(batch))
    cache = model.fixed_prompt.features
    assert cache.dtype == torch.float32 and cache.shape == (1, model.backbone.embed_dim)
    assert 'fixed_prompt.features' in dict(model.named_buffers())
    assert 'fixed_prompt.features' not in model.state_dict()
    with torch.no_grad():
        ref = model.backbone.text_encoder.encode_text(['A photo of a person.'])[0]
    torch.testing.assert_close(cache[0], ref)
    model.to(torch.float64)  # .to() reaches the cache (a device move works the same way)
    assert model.fixed_prompt.features.dtype == torch.float64


@pytest.mark.parametrize('loader', ['torch', 'mmengine'])
def test_fixed_prompt_cache_is_cleared_when_weights_load(batch, loader):
    from mmengine.runner.checkpoint import load_state_dict

    model = build(test_cfg=dict(prompt='fixed')).eval()
    with torch.no_grad():
        before = model.test_step(copy.deepcopy(batch))[0]['feat']
    other = build(test_cfg=dict(prompt='fixed'))
    with torch.no_grad():
        for p in other.backbone.text_encoder.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    state = other.state_dict()
    if loader == 'torch':
        model.load_state_dict(state)
    else:
        load_state_dict(model, state)
    assert model.fixed_prompt.features.numel() == 0
    with torch.no_grad():
        after = model.test_step(copy.deepcopy(batch))[0]['feat']
        other.eval()
        expected = other.test_step(copy.deepcopy(batch))[0]['feat']
    torch.testing.assert_close(after, expected)
    assert not torch.allclose(before, after)


def test_composed_prompt_inference_encodes_every_batch(batch, monkeypatch):
    model = build(test_cfg=dict(prompt='composed')).eval()
    calls = _count_text_encoder_calls(model, monkeypatch)
    with torch.no_grad():
        for _ in range(3):
            model.test_step(copy.deepcopy(batch))
    assert calls == ['encode_embeddings'] * 3


# -- SPEC §5.6: dropout on the training feature --------------------------------------------------


def test_feature_dropout_runs_in_training_only(batch):
    model = build(feat_dropout=0.5)
    seen = []
    model.feat_dropout.register_forward_hook(lambda m, i, o: seen.append((m.training, i[0], o)))
    model.train()
    model(**preprocess(model, batch, True), mode='loss')
    assert len(seen) == 1
    training, feat_in, feat_out = seen[0]
    assert training
    dropped = feat_out == 0
    assert 0.2 < dropped.float().mean() < 0.8
    torch.testing.assert_close(feat_out[~dropped], 2 * feat_in[~dropped])  # 1 / (1 - p)
    model.eval()
    seen.clear()
    data = preprocess(model, batch, False)
    with torch.no_grad():
        first, second = model(**data, mode='tensor'), model(**data, mode='tensor')
    torch.testing.assert_close(first, second)
    assert all(not training and torch.equal(i, o) for training, i, o in seen)


# -- retrieval feature, prediction records, flip ----------------------------------------------


@pytest.mark.parametrize('retrieval_feature, factor', [('mim', 1), ('global', 1), ('concat', 2)])
def test_retrieval_feature_width(batch, retrieval_feature, factor):
    model = build(retrieval_feature=retrieval_feature)
    dim = model.backbone.embed_dim
    assert model.feat_dim == factor * dim
    assert model.neck.in_channels == factor * dim
    model.train()
    losses = model(**preprocess(model, batch, True), mode='loss')
    assert torch.isfinite(total_loss(losses))
    model.eval()
    data = preprocess(model, batch, False)
    with torch.no_grad():
        feats = model.extract_feat(**data)
        embedded = model(**data, mode='tensor')
    assert embedded.shape == (len(batch['inputs']), factor * dim)
    expected = {
        'mim': feats['mim_feat'],
        'global': feats['img_feat'],
        'concat': torch.cat([feats['mim_feat'], feats['img_feat']], dim=-1),
    }[retrieval_feature]
    torch.testing.assert_close(embedded, F.normalize(expected, dim=-1))


def test_unknown_retrieval_feature_and_test_prompt_name_choices():
    with pytest.raises(
        ConfigError, match=r"retrieval_feature 'cls'.*\['mim', 'global', 'concat'\]"
    ):
        build(retrieval_feature='cls')
    with pytest.raises(ConfigError, match=r"test_cfg.prompt 'learned'.*\['composed', 'fixed'\]"):
        build(test_cfg=dict(prompt='learned'))


def test_predict_returns_normalised_features_with_labels(batch):
    model = build().eval()
    with torch.no_grad():
        records = model.test_step(copy.deepcopy(batch))
    samples = batch['data_samples']
    assert len(records) == len(batch['inputs'])
    for i, record in enumerate(records):
        assert set(record) == {'feat', 'pid', 'camid', 'sample_idx', 'is_query'}
        assert record['feat'].shape == (model.feat_dim,)
        assert record['feat'].norm().item() == pytest.approx(1.0, abs=1e-5)
        assert record['pid'] == int(samples['pid'][i])
        assert record['camid'] == int(samples['camid'][i])
        assert record['sample_idx'] == int(samples['sample_idx'][i])
        assert record['is_query'] == bool(samples['is_query'][i])
        assert isinstance(record['pid'], int) and isinstance(record['is_query'], bool)


def test_flip_averages_the_image_and_its_mirror(batch):
    model = build(test_cfg=dict(flip=True, prompt='composed')).eval()
    data = preprocess(model, batch, False)
    inputs = data['inputs']
    with torch.no_grad():
        plain = F.normalize(model.extract_feat(inputs, data['data_samples'])['feat'], dim=-1)
        mirror = F.normalize(
            model.extract_feat(inputs.flip(-1), data['data_samples'])['feat'], dim=-1
        )
        flipped = model(**data, mode='tensor')
    assert not torch.allclose(plain, mirror, atol=1e-4)
    torch.testing.assert_close(flipped, F.normalize(plain + mirror, dim=-1))


def test_needs_the_text_encoder():
    backbone = dict(type='CLIPViT', arch='tiny-vit', img_size=IMG_SIZE, with_text=False)
    with pytest.raises(ConfigError, match='with_text=True'):
        build(backbone=backbone)


# -- s* scale: logged against the token embeddings, optionally initialised at token scale ---------


@pytest.mark.parametrize('output_scale', ['batchnorm', 'token'])
def test_pseudo_token_norm_is_logged_beside_the_token_embedding_norm(batch, output_scale):
    model = build(inversion=dict(type='InversionNetwork', hidden_dim=32, output_scale=output_scale))
    model.train()
    losses = model.loss(**preprocess(model, batch, True))
    figures = {k: v for k, v in losses.items() if 'norm' in k}
    assert set(figures) == {'pseudo_token_norm', 'token_embed_norm'}
    assert all('loss' not in k and not v.requires_grad for k, v in figures.items())
    weight = model.backbone.text_encoder.token_embedding.weight
    torch.testing.assert_close(figures['token_embed_norm'], weight.norm(dim=1).mean())
    width = model.backbone.text_encoder.width
    target = figures['token_embed_norm'] if output_scale == 'token' else width**0.5
    assert abs(float(figures['pseudo_token_norm']) / float(target) - 1) < 0.1


def test_token_embedding_norm_follows_loaded_weights():
    model = build()
    before = float(model.token_embed_norm())
    with torch.no_grad():
        model.backbone.text_encoder.token_embedding.weight.mul_(2)
    assert float(model.token_embed_norm()) == pytest.approx(2 * before, rel=1e-5)


def test_unknown_output_scale_names_choices():
    with pytest.raises(
        ConfigError, match=r"output_scale 'tiny' is not one of \['batchnorm', 'token'\]"
    ):
        build(inversion=dict(type='InversionNetwork', output_scale='tiny'))


@pytest.mark.parametrize('retrieval_feature, built', [('mim', 0), ('global', 0), ('concat', 1)])
def test_concat_feature_is_built_only_when_selected(batch, retrieval_feature, built):
    from torch.overrides import TorchFunctionMode

    model = build(retrieval_feature=retrieval_feature).eval()
    data = preprocess(model, batch, False)
    dim = model.backbone.embed_dim
    concats = []

    class CountConcat(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            if func is torch.cat and out.ndim == 2 and out.shape[-1] == 2 * dim:
                concats.append(out.shape)
            return out

    with torch.no_grad(), CountConcat():
        model.extract_feat(**data)
    assert len(concats) == built
