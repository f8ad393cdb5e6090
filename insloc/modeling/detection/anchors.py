"""RPN anchors with detectron2's numerics (``DefaultAnchorGenerator``).

torchvision's ``AnchorGenerator`` differs in three ways that change which anchors exist and in
which order the RPN head's channels are read: it rounds the cell anchors to integers, orders them
ratio-major, and infers each level's stride from the padded image size (wrong when the size is not
a multiple of it, as in C4 without padding). Here the cell anchors are exact, size-major, and every
level has a fixed stride, so a detectron2 RPN head loads by renaming only.
"""

import math
from typing import List, Sequence

import torch
from torch import nn


def cell_anchors(sizes: Sequence[float], aspect_ratios: Sequence[float]) -> torch.Tensor:
    """Anchors centred on (0, 0): for each size (outer) and ratio h/w (inner), a box of area size^2.

    Returns: A x 4 XYXY, A = len(sizes) * len(aspect_ratios), float32.
    """
    anchors = []
    for size in sizes:
        area = float(size) ** 2
        for ratio in aspect_ratios:
            # Computed in float64 and stored as float32, as detectron2 does.
            w = math.sqrt(area / ratio)
            h = ratio * w
            anchors.append([-w / 2.0, -h / 2.0, w / 2.0, h / 2.0])
    return torch.tensor(anchors, dtype=torch.float32)


def _per_level(values: Sequence[Sequence[float]], num_levels: int, name: str):
    values = [list(v) for v in values]
    if len(values) == 1:
        return values * num_levels
    if len(values) != num_levels:
        raise ValueError(f"{name}: one list, or one per level ({num_levels}); got {len(values)}")
    return values


class AnchorGenerator(nn.Module):
    """Anchors of every feature-map position on each level.

    Args:
        sizes: anchor sizes per level (square root of the area in input pixels), one list for
            every level or one list per level. C4: ``[[32, 64, 128, 256, 512]]``; FPN:
            ``[[32], [64], [128], [256], [512]]``.
        aspect_ratios: h / w ratios, one list for every level or one list per level.
        strides: stride of each level in input pixels.
        offset: anchor centres at ``(i + offset) * stride``; 0.0 as detectron2 and torchvision.

    Attributes:
        num_anchors: anchors per position on each level.
    """

    def __init__(
        self,
        sizes: Sequence[Sequence[float]],
        aspect_ratios: Sequence[Sequence[float]],
        strides: Sequence[int],
        offset: float = 0.0,
    ):
        super().__init__()
        if not 0.0 <= offset < 1.0:
            raise ValueError(f"anchor offset must be in [0, 1), got {offset}")
        num_levels = len(strides)
        sizes = _per_level(sizes, num_levels, "anchor sizes")
        ratios = _per_level(aspect_ratios, num_levels, "anchor aspect ratios")
        self.strides = [int(s) for s in strides]
        self.offset = offset
        for i, (s, r) in enumerate(zip(sizes, ratios)):
            self.register_buffer(f"cell_anchors_{i}", cell_anchors(s, r), persistent=False)
        self.num_anchors = [len(s) * len(r) for s, r in zip(sizes, ratios)]

    def grid_anchors(self, level: int, height: int, width: int) -> torch.Tensor:
        """Anchors of a ``height x width`` map on ``level``. Returns: (H * W * A) x 4, ordered
        row, column, cell anchor (the order of the RPN head's flattened outputs)."""
        base = getattr(self, f"cell_anchors_{level}")  # A x 4
        stride = self.strides[level]
        start = self.offset * stride
        shift_x = torch.arange(start, width * stride, step=stride, dtype=torch.float32)  # W
        shift_y = torch.arange(start, height * stride, step=stride, dtype=torch.float32)  # H
        shift_y, shift_x = torch.meshgrid(
            shift_y.to(base.device), shift_x.to(base.device), indexing="ij"
        )
        shift_x, shift_y = shift_x.reshape(-1), shift_y.reshape(-1)  # HW
        shifts = torch.stack([shift_x, shift_y, shift_x, shift_y], dim=1)  # HW x 4
        return (shifts[:, None, :] + base[None, :, :]).reshape(-1, 4)  # HWA x 4

    def forward(self, features: List[torch.Tensor]) -> List[torch.Tensor]:
        """Args: features: per level N x C x H_l x W_l. Returns: per level (H_l W_l A_l) x 4."""
        if len(features) != len(self.strides):
            raise ValueError(f"{len(features)} feature maps for {len(self.strides)} anchor levels")
        return [self.grid_anchors(i, *f.shape[-2:]) for i, f in enumerate(features)]

    def extra_repr(self) -> str:
        return f"strides={self.strides}, num_anchors={self.num_anchors}, offset={self.offset}"
