"""build_clip: arch names, tags and local weight files in the OpenAI and open_clip layouts."""

import warnings

import huggingface_hub.constants
import pytest
import torch
from open_clip.model import CLIP
from open_clip.transformer import QuickGELU
from safetensors.torch import save_file

from promptsg.errors import CheckpointError, ConfigError
from promptsg.models.backbones.clip_builder import TINY_ARCHS, build_clip, read_state_dict


def _inputs():
    torch.manual_seed(1)
    return torch.randn(2, 3, 224, 224), torch.randint(1, 400, (2, 77))


def _assert_same_clip(a: CLIP, b: CLIP):
    a.eval(), b.eval()
    image, text = _inputs()
    with torch.no_grad():
        assert torch.equal(a.encode_image(image), b.encode_image(image))
        assert torch.equal(a.encode_text(text), b.encode_text(text))


def test_tiny_archs_build_small():
    for arch in ('tiny-vit', 'tiny-rn'):
        model = build_clip(arch)
        assert isinstance(model, CLIP)
        assert sum(p.numel() for p in model.parameters()) < 6_000_000


def test_unknown_arch_lists_closest_choices():
    with pytest.raises(ConfigError) as err:
        build_clip('ViT-B16')
    msg = str(err.value)
    assert "'ViT-B16'" in msg and '\n' not in msg
    assert msg.split('closest first): ')[1].startswith('ViT-B-16,')
    with pytest.raises(ConfigError, match='tiny-vit'):
        build_clip('tiny-vt')


def test_non_plain_clip_arch_rejected():
    with pytest.raises(ConfigError, match='not a plain CLIP'):
        build_clip('ViT-B-16-SigLIP')


def test_unknown_tag_lists_valid_tags():
    with pytest.raises(ConfigError, match="unknown pretrained tag 'nope'.*openai"):
        build_clip('ViT-B-16', 'nope')
    with pytest.raises(ConfigError, match='no pretrained tags'):
        build_clip('tiny-vit', 'openai')


def test_tag_that_cannot_be_fetched(monkeypatch, tmp_path):
    # Offline and an empty cache: the real open_clip download fails fast.
    monkeypatch.setattr(huggingface_hub.constants, 'HF_HUB_OFFLINE', True)
    with pytest.raises(CheckpointError) as err:
        build_clip('RN50', 'openai', cache_dir=str(tmp_path))
    msg = str(err.value)
    assert 'could not fetch' in msg and 'local file path' in msg and '\n' not in msg


def test_missing_file():
    with pytest.raises(CheckpointError, match='pretrained file not found: /no/such/clip.pt'):
        build_clip('tiny-vit', '/no/such/clip.pt')


def test_unreadable_file(tmp_path):
    path = tmp_path / 'broken.pt'
    path.write_bytes(b'not a checkpoint')
    with pytest.raises(CheckpointError, match='cannot read pretrained file'):
        build_clip('tiny-vit', str(path))


def test_openai_plain_state_dict_fp16_with_int_entries(tmp_path):
    source = CLIP(**TINY_ARCHS['tiny-rn'], quick_gelu=True)
    state = {k: v.half() if v.is_floating_point() else v for k, v in source.state_dict().items()}
    state.update(input_resolution=224, context_length=77, vocab_size=49408)
    torch.save(state, tmp_path / 'openai.pt')
    for p in source.parameters():  # what the fp16 file holds
        p.data = p.data.half().float()

    loaded = build_clip('tiny-rn', str(tmp_path / 'openai.pt'))
    assert isinstance(loaded.transformer.resblocks[0].mlp.gelu, QuickGELU)
    assert all(p.dtype == torch.float32 for p in loaded.parameters())
    _assert_same_clip(source, loaded)


def test_openai_torchscript_archive(tmp_path):
    source = CLIP(**TINY_ARCHS['tiny-vit'], quick_gelu=True).eval()
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', torch.jit.TracerWarning)
        traced = torch.jit.trace_module(
            source,
            dict(
                encode_image=(torch.randn(1, 3, 224, 224),),
                encode_text=(torch.zeros(1, 77).long(),),
            ),
            check_trace=False,
        )
    torch.jit.save(traced, str(tmp_path / 'ViT.pt'))
    state, openai_layout = read_state_dict(tmp_path / 'ViT.pt')
    assert openai_layout and 'attn_mask' not in state

    loaded = build_clip('tiny-vit', str(tmp_path / 'ViT.pt'))
    assert isinstance(loaded.visual.transformer.resblocks[0].mlp.gelu, QuickGELU)
    _assert_same_clip(source, loaded)


def test_open_clip_bin_wrapped_with_module_prefix(tmp_path):
    source = CLIP(**TINY_ARCHS['tiny-vit'])
    wrapped = {'state_dict': {f'module.{k}': v for k, v in source.state_dict().items()}}
    torch.save(wrapped, tmp_path / 'open_clip_pytorch_model.bin')
    loaded = build_clip('tiny-vit', str(tmp_path / 'open_clip_pytorch_model.bin'))
    assert isinstance(loaded.transformer.resblocks[0].mlp.gelu, torch.nn.GELU)
    _assert_same_clip(source, loaded)


def test_open_clip_safetensors(tmp_path):
    source = CLIP(**TINY_ARCHS['tiny-rn'])
    state = {k: v.contiguous() for k, v in source.state_dict().items()}
    save_file(state, str(tmp_path / 'model.safetensors'))
    loaded = build_clip('tiny-rn', tmp_path / 'model.safetensors')
    _assert_same_clip(source, loaded)


def test_key_mismatch_names_keys(tmp_path):
    state = CLIP(**TINY_ARCHS['tiny-vit']).state_dict()
    del state['visual.proj']
    state['visual.extra_head.weight'] = torch.zeros(1)
    torch.save(state, tmp_path / 'bad.pth')
    with pytest.raises(CheckpointError) as err:
        build_clip('tiny-vit', str(tmp_path / 'bad.pth'))
    msg = str(err.value)
    assert 'missing keys: visual.proj' in msg and 'visual.extra_head.weight' in msg
    assert '\n' not in msg


def test_weights_of_another_arch_rejected(tmp_path):
    torch.save(CLIP(**TINY_ARCHS['tiny-vit']).state_dict(), tmp_path / 'vit.pt')
    with pytest.raises(CheckpointError, match="arch 'tiny-rn'.*missing keys"):
        build_clip('tiny-rn', str(tmp_path / 'vit.pt'))
