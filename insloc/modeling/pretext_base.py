"""What the classic pretext methods share: a classification trunk on uint8 views, pooled globally,
the head that classifies a set of tiles (jigsaw, relative location), and the config checks common
to all of them.

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


# Every pretext method's entry (insloc.config.registry.register_method) takes any registered
# classification trunk.
PRETEXT_BACKBONE_KIND = "trunk"


def check_pretext_config(cfg, fail) -> None:
    """The checks every pretext method's validation starts with: the trunk, the crops, and the
    pretraining outputs a pretext method has none of (``fail(key, expected)`` on the first)."""
    arch, backbone = cfg.MODEL.META_ARCHITECTURE, cfg.MODEL.BACKBONE.NAME
    if backbone in ("resnet_v2", "revnet") and cfg.MODEL.RESNETS.DEPTH != 50:
        fail("MODEL.RESNETS.DEPTH", f"50 for MODEL.BACKBONE.NAME {backbone!r}")
    if backbone == "exemplar_cnn" and arch != "Exemplar":
        fail("MODEL.BACKBONE.NAME", "'exemplar_cnn' only with MODEL.META_ARCHITECTURE 'Exemplar'")
    if cfg.TEST.INSTANCE_DISC_SAMPLES:
        fail("TEST.INSTANCE_DISC_SAMPLES", f"0 for MODEL.META_ARCHITECTURE {arch!r} (no embedding)")
    if cfg.VIS_SAMPLES:
        fail("VIS_SAMPLES", f"0 for MODEL.META_ARCHITECTURE {arch!r} (composites are InsLoc's)")
    crop = cfg.INPUT.PRETEXT.CROP_SIZE
    if cfg.INPUT.PRETEXT.RESIZE and cfg.INPUT.PRETEXT.RESIZE < crop:
        fail("INPUT.PRETEXT.RESIZE", f"0 or a side >= INPUT.PRETEXT.CROP_SIZE ({crop})")


def check_tile_config(cfg, fail, key: str) -> None:
    """A 3 x 3 grid of tiles (jigsaw, relative location): INPUT.<key>.TILE_SIZE and JITTER fit
    the cells of the crop."""
    crop = cfg.INPUT.PRETEXT.CROP_SIZE
    tile, jitter = cfg.INPUT[key].TILE_SIZE, cfg.INPUT[key].JITTER
    if tile + 2 * jitter > crop // 3:
        fail(
            f"INPUT.{key}.TILE_SIZE",
            f"TILE_SIZE + 2 JITTER ({tile} + 2 x {jitter}) <= INPUT.PRETEXT.CROP_SIZE / 3 "
            f"({crop // 3}), the 3x3 cells the tiles sit in",
        )
