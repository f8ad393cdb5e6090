"""What the classic pretext methods share: a classification trunk on uint8 views, pooled globally,
and the head that classifies a set of tiles (jigsaw, relative location).

The trunk is the model's ``backbone`` attribute, so every method's checkpoint holds it under
``backbone.*``: the linear probe and the torchvision converter read it from there.
"""

from typing import Sequence

import torch
from torch import nn

from .backbone import build_backbone


class PretextModel(nn.Module):
    """Base class: ``embed`` maps uint8 views to globally pooled trunk features.

    Args:
        backbone: a trunk returning ``{backbone.out_feature: M x C x h x w}`` (``TappedTrunk``).
        pixel_mean, pixel_std: RGB normalisation of the uint8 input.
        channels_last: feed CUDA trunks channels_last images.
    """

    def __init__(
        self,
        backbone: nn.Module,
        pixel_mean: Sequence[float] = (123.675, 116.28, 103.53),
        pixel_std: Sequence[float] = (58.395, 57.12, 57.375),
        channels_last: bool = False,
    ):
        super().__init__()
        self.backbone = backbone
        self.channels_last = channels_last
        self.register_buffer("pixel_mean", torch.tensor(pixel_mean).view(3, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(pixel_std).view(3, 1, 1), persistent=False)

    @staticmethod
    def base_kwargs(cfg) -> dict:
        """The trunk and normalisation every pretext method reads from ``cfg``."""
        return dict(
            backbone=build_backbone(cfg),
            pixel_mean=tuple(cfg.MODEL.PIXEL_MEAN),
            pixel_std=tuple(cfg.MODEL.PIXEL_STD),
            channels_last=cfg.MODEL.CHANNELS_LAST,
        )

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """Args: images: uint8 M x 3 x H x W RGB. Returns: M x C pooled pre-logits."""
        x = (images.float() - self.pixel_mean) / self.pixel_std  # x: M x 3 x H x W
        if self.channels_last and x.is_cuda:
            x = x.contiguous(memory_format=torch.channels_last)
        features = self.backbone(x)[self.backbone.out_feature]  # M x C x h x w
        return features.mean(dim=(2, 3))  # M x C


def classification_outputs(logits: torch.Tensor, labels: torch.Tensor) -> dict:
    """Cross-entropy loss and detached top-1 accuracy. Args: logits: M x K; labels: M."""
    loss = nn.functional.cross_entropy(logits.float(), labels)
    accuracy = (logits.argmax(dim=1) == labels).float().mean().detach()
    return {"loss_cls": loss, "accuracy": accuracy}


class TileHead(nn.Module):
    """Classifies a set of tiles from their pooled features (Noroozi & Favaro's context-free net;
    Doersch et al.'s pair net): a shared fc per tile, concatenation, a hidden fc, the classifier.

    Args:
        in_dim: C, pooled trunk features per tile.
        num_tiles: T (9 for jigsaw, 2 for relative location).
        tile_dim: the per-tile fc's output (fc6).
        hidden_dim: the hidden fc on the T concatenated tiles (fc7).
        num_classes: permutations or positions.
    """

    def __init__(
        self, in_dim: int, num_tiles: int, tile_dim: int, hidden_dim: int, num_classes: int
    ):
        super().__init__()
        self.num_tiles = num_tiles
        self.tile_fc = nn.Sequential(nn.Linear(in_dim, tile_dim), nn.ReLU(inplace=True))
        self.classifier = nn.Sequential(
            nn.Linear(num_tiles * tile_dim, hidden_dim),
            nn.ReLU(inplace=True),
            nn.Linear(hidden_dim, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x: N x T x C. Returns: N x num_classes logits."""
        t = self.tile_fc(x)  # t: N x T x tile_dim
        return self.classifier(t.flatten(1))  # N x num_classes
