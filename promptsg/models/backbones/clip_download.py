"""Find or download the weights file of an open_clip pretrained tag, failing fast offline.

open_clip fetches a tag from the Hugging Face Hub (or, without ``huggingface_hub``, from a
URL). Offline, the hub client retries for about 45 s before giving up, even when the file is
already cached. Here a cached hub file is used directly, and when the file is not cached and
the host cannot be reached (or ``HF_HUB_OFFLINE`` is set) the error comes at once. Behind an
HTTPS proxy (``HTTPS_PROXY`` / ``ALL_PROXY``) no direct probe is made.
"""

from __future__ import annotations

import os
import socket
from urllib.parse import urlparse

import open_clip
from open_clip.constants import HF_SAFE_WEIGHTS_NAME, HF_WEIGHTS_NAME

from promptsg.errors import CheckpointError

#: Seconds a connection probe waits for the host.
PROBE_TIMEOUT_S = 5.0
PROXY_VARS = ('HTTPS_PROXY', 'https_proxy', 'ALL_PROXY', 'all_proxy')


def _hub():
    """The ``huggingface_hub`` module, or None when it is not installed (open_clip uses URLs)."""
    try:
        import huggingface_hub
        import huggingface_hub.constants
    except ImportError:
        return None
    return huggingface_hub


def hub_files(hf_hub: str) -> tuple[str, list[str]]:
    """(repo id, file names in the order open_clip tries them) of an ``hf_hub`` tag entry.

    ``'org/name/'`` means the default file; ``'org/name/file.bin'`` names one. A ``.bin`` or
    ``.pth`` file is tried after its ``.safetensors`` twin, as open_clip does.
    """
    repo_id, filename = os.path.split(hf_hub)
    filename = filename or HF_WEIGHTS_NAME
    names = [filename]
    if filename == HF_WEIGHTS_NAME:
        names.insert(0, HF_SAFE_WEIGHTS_NAME)
    elif filename.endswith(('.bin', '.pth')):
        names.insert(0, filename[:-4] + '.safetensors')
    return repo_id, names


def _endpoint(tag_cfg: dict, hub) -> tuple[str, int, bool]:
    """(host, port, uses the hub) that fetching ``tag_cfg`` would contact."""
    use_hub = hub is not None and bool(tag_cfg.get('hf_hub'))
    url = urlparse(hub.constants.ENDPOINT if use_hub else tag_cfg.get('url', ''))
    return url.hostname or '', url.port or (80 if url.scheme == 'http' else 443), use_hub


def cached_hub_file(tag_cfg: dict, cache_dir: str | None) -> str | None:
    """Path of the tag's file in the Hugging Face cache, or None (not cached, or no hub)."""
    hub = _hub()
    if hub is None or not tag_cfg.get('hf_hub'):
        return None
    repo_id, names = hub_files(tag_cfg['hf_hub'])
    for name in names:
        path = hub.try_to_load_from_cache(repo_id, name, cache_dir=cache_dir)
        if isinstance(path, str) and os.path.isfile(path):
            return path
    return None


def _url_target(tag_cfg: dict, cache_dir: str | None) -> str:
    """Where open_clip keeps a URL download (its own cache layout)."""
    folder = cache_dir or os.path.expanduser('~/.cache/clip')
    return os.path.join(folder, os.path.basename(tag_cfg.get('url', '')))


def unreachable(host: str, port: int) -> str | None:
    """Why ``host:port`` cannot be reached directly, or None (reachable, or behind a proxy)."""
    if any(os.environ.get(name) for name in PROXY_VARS):
        return None
    try:
        socket.create_connection((host, port), timeout=PROBE_TIMEOUT_S).close()
    except OSError as err:
        return f'cannot reach {host} ({type(err).__name__}: {err})'
    return None


def fetch_tag_file(tag_cfg: dict, cache_dir: str | None, what: str) -> str:
    """Local path of the weights of ``tag_cfg`` (an open_clip pretrained cfg), downloading
    them if needed; ``what`` names the tag in errors (e.g. "'openai' for arch 'RN50'")."""
    if tag_cfg.get('file'):
        return tag_cfg['file']
    cached = cached_hub_file(tag_cfg, cache_dir)
    if cached is not None:
        return cached
    hub = _hub()
    host, port, use_hub = _endpoint(tag_cfg, hub)
    reason = None
    if use_hub and hub.constants.HF_HUB_OFFLINE:
        reason = 'HF_HUB_OFFLINE is set'
    elif use_hub or not os.path.isfile(_url_target(tag_cfg, cache_dir)):
        reason = unreachable(host, port) if host else None
    if reason is not None:
        raise CheckpointError(
            f'could not fetch pretrained weights {what}: {reason}, and the file is not in the '
            'cache; pass a local file path as pretrained instead'
        )
    try:
        path = open_clip.download_pretrained(tag_cfg, cache_dir=cache_dir)
    except Exception as err:  # hub errors, disk full, a corrupt download
        raise CheckpointError(
            f'could not fetch pretrained weights {what} ({type(err).__name__}); '
            'pass a local file path as pretrained instead'
        ) from err
    if not path:
        raise CheckpointError(
            f'could not fetch pretrained weights {what}; pass a local file path as pretrained instead'
        )
    return path
