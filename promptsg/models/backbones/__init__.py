"""CLIP image backbones (registered in ``BACKBONES``) and the open_clip model builder."""

from promptsg.models.backbones.clip_builder import TINY_ARCHS, build_clip
from promptsg.models.backbones.clip_resnet import CLIPResNet
from promptsg.models.backbones.clip_vit import CLIPViT
from promptsg.models.backbones.pos_embed import resize_pos_embed_2d

__all__ = ['TINY_ARCHS', 'CLIPResNet', 'CLIPViT', 'build_clip', 'resize_pos_embed_2d']
