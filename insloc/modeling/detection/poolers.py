"""RoIAlign of each box on one pyramid level chosen by its size (detectron2's ``ROIPooler``).

torchvision's ``MultiScaleRoIAlign`` differs twice: ``aligned=False`` (no half-pixel offset) and
its own level rule (``floor(4 + log2(sqrt(area) / 224) + 1e-6)`` on levels inferred from the
feature sizes). Here boxes go to level ``floor(4 + log2(sqrt(area) / 224 + 1e-8))`` clamped to the
pooled levels (Eq. 1 of the FPN paper, with detectron2's epsilon), and RoIAlign is ROIAlignV2.
"""

import math
from typing import Dict, List, Sequence

import torch
from torch import nn

from ..roi_align import roi_align


def assign_boxes_to_levels(
    boxes: torch.Tensor,
    min_level: int,
    max_level: int,
    canonical_box_size: int = 224,
    canonical_level: int = 4,
) -> torch.Tensor:
    """Index (0 = ``min_level``) of the level each box is pooled from.

    Args: boxes: M x 4 XYXY input pixels. Returns: M int64 in [0, max_level - min_level].
    """
    sizes = ((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])).sqrt()  # M
    levels = torch.floor(canonical_level + torch.log2(sizes / canonical_box_size + 1e-8))  # M
    return levels.clamp(min=min_level, max=max_level).to(torch.int64) - min_level


def boxes_to_rois(boxes: List[torch.Tensor]) -> torch.Tensor:
    """Per image M_i x 4 -> sum(M_i) x 5 rows (image index, x1, y1, x2, y2) for ``roi_align``."""
    index = torch.cat(
        [torch.full((len(b), 1), i, dtype=b.dtype, device=b.device) for i, b in enumerate(boxes)]
    )  # M x 1
    return torch.cat([index, torch.cat(boxes)], dim=1)  # M x 5


class LevelRoIPooler(nn.Module):
    """Pools every box on one of ``in_features`` (by size when there are several).

    Args:
        in_features: pooled maps, finest first; their strides must be consecutive powers of 2.
        strides: {name: stride}.
        output_size: side R of the pooled grid (7 for the FPN box head, 14 for C4 and masks).
        sampling_ratio: sampling points per bin (0: adaptive).
        aligned: half-pixel offset (ROIAlignV2, detectron2's protocol); False is torchvision's and
            detectron2's legacy "ROIAlign".
        canonical_box_size, canonical_level: a box of this size goes to this level.
    """

    def __init__(
        self,
        in_features: Sequence[str],
        strides: Dict[str, int],
        output_size: int,
        sampling_ratio: int = 0,
        aligned: bool = True,
        canonical_box_size: int = 224,
        canonical_level: int = 4,
    ):
        super().__init__()
        missing = [f for f in in_features if f not in strides]
        if missing:
            raise ValueError(f"no stride for pooled maps {missing}; known maps: {sorted(strides)}")
        levels = [math.log2(strides[f]) for f in in_features]
        if any(lvl != int(lvl) for lvl in levels) or levels != list(
            range(int(levels[0]), int(levels[0]) + len(levels))
        ):
            raise ValueError(
                f"pooled maps {list(in_features)} must have strides 2^k, 2^(k+1), ...; got "
                f"{[strides[f] for f in in_features]}"
            )
        self.in_features = list(in_features)
        self.scales = [1.0 / strides[f] for f in in_features]
        self.min_level, self.max_level = int(levels[0]), int(levels[-1])
        self.output_size = output_size
        self.sampling_ratio = sampling_ratio
        self.aligned = aligned
        self.canonical_box_size = canonical_box_size
        self.canonical_level = canonical_level

    def _pool(self, x: torch.Tensor, rois: torch.Tensor, level: int) -> torch.Tensor:
        return roi_align(
            x,
            rois.to(x.dtype),
            self.output_size,
            spatial_scale=self.scales[level],
            sampling_ratio=self.sampling_ratio,
            aligned=self.aligned,
        )  # M x C x R x R

    def forward(self, features: Dict[str, torch.Tensor], boxes: List[torch.Tensor]) -> torch.Tensor:
        """
        Args:
            features: {name: N x C x H_l x W_l}.
            boxes: per image M_i x 4 XYXY in input pixels.
        Returns:
            M x C x R x R, M = sum(M_i), in the order of the boxes.
        """
        maps = [features[f] for f in self.in_features]
        rois = boxes_to_rois(boxes)  # M x 5
        if len(maps) == 1:
            return self._pool(maps[0], rois, 0)
        levels = assign_boxes_to_levels(
            rois[:, 1:],
            self.min_level,
            self.max_level,
            self.canonical_box_size,
            self.canonical_level,
        )  # M
        out = None
        for level, x in enumerate(maps):
            index = (levels == level).nonzero()[:, 0]  # M_l
            pooled = self._pool(x, rois[index], level)  # M_l x C x R x R
            if out is None:  # roi_align's dtype: float32 under autocast
                out = pooled.new_zeros((len(rois),) + pooled.shape[1:])  # M x C x R x R
            out.index_put_((index,), pooled)
        return out

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, output_size={self.output_size}, "
            f"aligned={self.aligned}"
        )
