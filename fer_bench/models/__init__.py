"""Backbones shared by every method (and, later, pretrained-checkpoint loading)."""

from .resnet import ResNetBackbone, create_backbone

__all__ = ["ResNetBackbone", "create_backbone"]
