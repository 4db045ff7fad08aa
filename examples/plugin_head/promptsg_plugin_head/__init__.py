"""Example promptsg plugin: importing it registers ``CosFaceHead`` and ``CosFaceLoss``."""

from promptsg_plugin_head.cosface import CosFaceHead, CosFaceLoss

__all__ = ['CosFaceHead', 'CosFaceLoss']
__version__ = '0.1.0'
