"""fetch_tag_file: cached hub files are used without the network; offline fails at once."""

import socket
import time

import huggingface_hub.constants
import open_clip
import pytest

from promptsg.errors import CheckpointError
from promptsg.models.backbones import clip_download
from promptsg.models.backbones.clip_download import fetch_tag_file, hub_files

RN50_OPENAI = open_clip.get_pretrained_cfg('RN50', 'openai')  # hf_hub 'timm/resnet50_clip.openai/'


@pytest.fixture
def no_network(monkeypatch):
    """A machine without network: name resolution fails; the download must not be tried."""

    def refuse(address, timeout=None):
        raise socket.gaierror(-2, 'Name or service not known')

    def download(*args, **kwargs):
        raise AssertionError('the download should not have been tried')

    for name in clip_download.PROXY_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(huggingface_hub.constants, 'HF_HUB_OFFLINE', False)
    monkeypatch.setattr(socket, 'create_connection', refuse)
    monkeypatch.setattr(open_clip, 'download_pretrained', download)


def _cache_hub_file(cache_dir, repo_id: str, filename: str) -> str:
    """Lay a file out as huggingface_hub's cache does (refs/main -> snapshots/<commit>/)."""
    repo = cache_dir / ('models--' + repo_id.replace('/', '--'))
    commit = 'a' * 40
    (repo / 'refs').mkdir(parents=True)
    (repo / 'refs' / 'main').write_text(commit)
    path = repo / 'snapshots' / commit / filename
    path.parent.mkdir(parents=True)
    path.write_bytes(b'weights')
    return str(path)


def test_hub_file_names_follow_open_clip():
    assert hub_files('timm/resnet50_clip.openai/') == (
        'timm/resnet50_clip.openai',
        ['open_clip_model.safetensors', 'open_clip_pytorch_model.bin'],
    )
    assert hub_files('org/model/weights.bin') == (
        'org/model',
        ['weights.safetensors', 'weights.bin'],
    )
    assert hub_files('org/model/weights.pt') == ('org/model', ['weights.pt'])


def test_unreachable_host_fails_at_once(no_network, tmp_path):
    start = time.perf_counter()
    with pytest.raises(CheckpointError) as err:
        fetch_tag_file(RN50_OPENAI, str(tmp_path), "'openai' for arch 'RN50'")
    assert time.perf_counter() - start < 5  # no retries (the hub client's take ~45 s)
    msg = str(err.value)
    assert "could not fetch pretrained weights 'openai' for arch 'RN50'" in msg
    assert 'cannot reach huggingface.co' in msg and 'local file path' in msg and '\n' not in msg


def test_offline_flag_fails_without_a_probe(no_network, monkeypatch, tmp_path):
    monkeypatch.setattr(huggingface_hub.constants, 'HF_HUB_OFFLINE', True)
    monkeypatch.setattr(clip_download, 'unreachable', lambda *a: pytest.fail('probed'))
    with pytest.raises(CheckpointError, match='HF_HUB_OFFLINE is set'):
        fetch_tag_file(RN50_OPENAI, str(tmp_path), 'x')


@pytest.mark.parametrize('filename', ['open_clip_model.safetensors', 'open_clip_pytorch_model.bin'])
def test_cached_hub_file_is_used_offline(no_network, tmp_path, filename):
    path = _cache_hub_file(tmp_path, 'timm/resnet50_clip.openai', filename)
    assert fetch_tag_file(RN50_OPENAI, str(tmp_path), 'x') == path


def test_proxy_skips_the_probe(no_network, monkeypatch, tmp_path):
    monkeypatch.setenv('HTTPS_PROXY', 'http://proxy.example:3128')
    monkeypatch.setattr(open_clip, 'download_pretrained', lambda cfg, cache_dir=None: '/w.bin')
    assert fetch_tag_file(RN50_OPENAI, str(tmp_path), 'x') == '/w.bin'


def test_url_download_already_on_disk_needs_no_network(no_network, monkeypatch, tmp_path):
    cfg = {'url': 'https://openaipublic.example/clip/models/abc/RN50.pt'}
    (tmp_path / 'RN50.pt').write_bytes(b'weights')
    monkeypatch.setattr(clip_download, '_hub', lambda: None)  # open_clip without huggingface_hub
    monkeypatch.setattr(
        open_clip, 'download_pretrained', lambda c, cache_dir=None: 'from open_clip'
    )
    assert fetch_tag_file(cfg, str(tmp_path), 'x') == 'from open_clip'
    (tmp_path / 'RN50.pt').unlink()
    with pytest.raises(CheckpointError, match='cannot reach openaipublic.example'):
        fetch_tag_file(cfg, str(tmp_path), 'x')


def test_download_errors_become_one_line(monkeypatch, tmp_path):
    monkeypatch.setattr(clip_download, 'unreachable', lambda *a: None)
    monkeypatch.setattr(huggingface_hub.constants, 'HF_HUB_OFFLINE', False)

    def broken(cfg, cache_dir=None):
        raise OSError('disk full\nsecond line')

    monkeypatch.setattr(open_clip, 'download_pretrained', broken)
    with pytest.raises(CheckpointError, match=r'\(OSError\); pass a local file path') as err:
        fetch_tag_file(RN50_OPENAI, str(tmp_path), 'x')
    assert '\n' not in str(err.value)
