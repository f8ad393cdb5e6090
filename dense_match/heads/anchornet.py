"""AnchorNet (Novotny, Larlus, Vedaldi, CVPR 2017): class anchors on a hypercolumn.

The features are a hypercolumn of three ResNet-50 stages (ReLU, 1x1 "PCA" conv to 256 each,
resampled to 56 x 56 for a 224 input, L2-normalised per location, concatenated: 768 channels;
``DENSE.FEATURES`` builds it). Each class c has K filters of size 3 x 3 giving K response maps.
With y = +1 for an image of class c and -1 otherwise, and image-level labels only:

- discriminability: SoftReLU(-y * max_u r_ck(u)) per filter, plus, on negatives, SoftReLU of the
  global average of the response (no part of a negative image may respond on average);
- filter diversity: the K unit-normalised filters of a class are pushed to be orthogonal;
- response diversity: the K unit-normalised response maps of a positive image are pushed to be
  orthogonal (each anchor fires on a different part);
- a class-agnostic denoising auto-encoder (1x1 conv, transposed 1x1 conv) reconstructs the
  L2-normalised hypercolumn from a copy with 25% of its channels dropped.

Matching uses the hypercolumn itself (``desc``), class-agnostic, so any pair can be matched.
"""

import torch
import torch.nn.functional as F
from torch import nn

from .build import DENSE_HEAD_REGISTRY

__all__ = ["AnchorNet"]


def _off_diagonal_mean_sq(gram: torch.Tensor) -> torch.Tensor:
    """Mean squared off-diagonal entry of ... x K x K Gram matrices."""
    k = gram.shape[-1]
    eye = torch.eye(k, device=gram.device, dtype=torch.bool)
    return gram.masked_fill(eye, 0).pow(2).sum((-1, -2)).mean() / max(k * (k - 1), 1)


@DENSE_HEAD_REGISTRY.register()
class AnchorNet(nn.Module):
    """Per-class anchor filters, their losses, and the denoising auto-encoder.

    Args:
        in_channels: hypercolumn channels (768).
        num_classes: classes with anchors (image-level labels 0..num_classes-1).
        num_filters: K filters per class.
        filter_size: side of each filter.
        loss_weights: (discriminability, filter orthogonality, response orthogonality, AE).
        avg_pool_weight: weight of the average-pooling term on negatives.
        ae_dim: code channels of the auto-encoder; ae_dropout: its input channel dropout.
    """

    TRAIN_DATA = "labelled_images"

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        num_filters: int = 10,
        filter_size: int = 3,
        loss_weights=(1.0, 1.0, 1.0, 1.0),
        avg_pool_weight: float = 1.0,
        ae_dim: int = 256,
        ae_dropout: float = 0.25,
    ):
        super().__init__()
        self.num_classes = num_classes
        self.num_filters = num_filters
        self.anchors = nn.Conv2d(
            in_channels, num_classes * num_filters, filter_size, padding=filter_size // 2
        )
        self.encoder = nn.Conv2d(in_channels, ae_dim, kernel_size=1)
        self.decoder = nn.ConvTranspose2d(ae_dim, in_channels, kernel_size=1)
        self.dropout = nn.Dropout2d(ae_dropout)  # drops whole channels
        self.loss_weights = tuple(float(w) for w in loss_weights)
        self.avg_pool_weight = avg_pool_weight

    @classmethod
    def from_config(cls, cfg, in_channels: int) -> "AnchorNet":
        c = cfg.DENSE.ANCHORNET
        return cls(
            in_channels,
            c.NUM_CLASSES,
            num_filters=c.NUM_FILTERS,
            filter_size=c.FILTER_SIZE,
            loss_weights=c.LOSS_WEIGHTS,
            avg_pool_weight=c.AVG_POOL_WEIGHT,
            ae_dim=c.AE_DIM,
            ae_dropout=c.AE_DROPOUT,
        )

    def forward(self, features: torch.Tensor) -> dict:
        """Args: features: N x C x h x w hypercolumn. Returns: desc N x C x h x w (unit)."""
        return {"desc": F.normalize(features, dim=1)}

    def responses(self, features: torch.Tensor) -> torch.Tensor:
        """N x C x h x w -> N x classes x K x (h * w) anchor responses."""
        r = self.anchors(features)  # N x (classes * K) x h x w
        return r.flatten(2).unflatten(1, (self.num_classes, self.num_filters))

    def losses(self, extract, batch: dict) -> dict:
        """Args: batch with image (N x 3 x S x S uint8) and labels (N x classes, 0/1)."""
        features = extract(batch["image"])  # N x C x h x w
        labels = batch["labels"].float()  # N x classes
        if labels.shape[1] != self.num_classes:
            raise ValueError(
                f"the training images have {labels.shape[1]} classes but "
                f"DENSE.ANCHORNET.NUM_CLASSES is {self.num_classes}"
            )
        r = self.responses(features)  # N x classes x K x hw
        y = (2 * labels - 1)[..., None]  # N x classes x 1: +1 positive, -1 negative
        disc = F.softplus(-y * r.amax(-1)).mean()  # global max pooling, SoftReLU
        negative = (labels == 0)[..., None].expand(-1, -1, self.num_filters)  # N x classes x K
        avg = F.softplus(r.mean(-1))[negative]  # global average pooling on negatives
        if avg.numel():
            disc = disc + self.avg_pool_weight * avg.mean()

        w = F.normalize(self.anchors.weight.flatten(1), dim=1)  # (classes * K) x (C * f * f)
        w = w.unflatten(0, (self.num_classes, self.num_filters))  # classes x K x (C f f)
        filter_div = _off_diagonal_mean_sq(w @ w.transpose(1, 2))  # classes x K x K grams

        pos = labels > 0  # N x classes
        resp = F.normalize(r[pos], dim=-1)  # M x K x hw, M positive (image, class) pairs
        zero = r.sum() * 0
        response_div = _off_diagonal_mean_sq(resp @ resp.transpose(1, 2)) if resp.numel() else zero

        target = F.normalize(features.detach(), dim=1)  # N x C x h x w
        code = F.relu(self.encoder(self.dropout(features)))  # N x ae_dim x h x w
        rec = F.normalize(self.decoder(code), dim=1)  # N x C x h x w
        ae = (rec - target).pow(2).sum(1).mean()

        wd, wf, wr, wa = self.loss_weights
        return {
            "loss_discriminability": wd * disc,
            "loss_filter_diversity": wf * filter_div,
            "loss_response_diversity": wr * response_div,
            "loss_autoencoder": wa * ae,
        }
