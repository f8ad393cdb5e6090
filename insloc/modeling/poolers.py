"""RoIAlign of one box per sample per level, each level with its own box."""

from typing import Dict, List, Sequence

import torch
from torch import nn

from .roi_align import roi_align


class RoIPooler(nn.Module):
    """Pools ``boxes[:, l]`` on level ``in_features[l]`` for every level l (not one level per box).

    InsLoc pools every box on every FPN level separately, each level with a box of its own (the
    query's coarsest level pools the augmented box). RoIAlign with ``aligned=True`` (half-pixel
    offset, as detectron2's ROIAlignV2 and torchvision's MultiScaleRoIAlign).

    Args:
        in_features: level names, in the order of the boxes' second dimension.
        strides: {name: stride}; the spatial scale of a level is 1 / stride.
        output_size: side R of the pooled grid.
        sampling_ratio: sampling points per bin (0: adaptive).
    """

    def __init__(
        self,
        in_features: Sequence[str],
        strides: Dict[str, int],
        output_size: int = 7,
        sampling_ratio: int = 0,
    ):
        super().__init__()
        missing = [f for f in in_features if f not in strides]
        if missing:
            raise ValueError(
                f"no stride for pooled levels {missing}; known levels: {sorted(strides)}"
            )
        self.in_features = list(in_features)
        self.scales = {f: 1.0 / strides[f] for f in in_features}
        self.output_size = output_size
        self.sampling_ratio = sampling_ratio

    def forward(self, features: Dict[str, torch.Tensor], boxes: torch.Tensor) -> List[torch.Tensor]:
        """
        Args:
            features: {name: N x C x H_l x W_l}.
            boxes: N x L x 4, XYXY in input pixels, L = len(in_features).
        Returns:
            L tensors N x C x R x R, in ``in_features`` order.
        """
        n, num_levels = boxes.shape[:2]
        if num_levels != len(self.in_features) or boxes.shape[2] != 4:
            raise ValueError(
                f"boxes must be N x {len(self.in_features)} x 4 (one box per level of "
                f"{self.in_features}), got {tuple(boxes.shape)}"
            )
        pooled = []
        for level, name in enumerate(self.in_features):
            x = features[name]  # x: N x C x H_l x W_l
            # Boxes stay float32 under autocast (bf16 rounds 256-pixel coordinates to a pixel);
            # torchvision's roi_align then computes in float32.
            dtype = torch.float32 if torch.is_autocast_enabled(x.device.type) else x.dtype
            index = torch.arange(n, device=x.device, dtype=dtype)[:, None]  # N x 1
            rois = torch.cat([index, boxes[:, level].to(dtype)], dim=1)  # rois: N x 5
            pooled.append(
                roi_align(
                    x,
                    rois,
                    self.output_size,
                    spatial_scale=self.scales[name],
                    sampling_ratio=self.sampling_ratio,
                    aligned=True,
                )
            )  # N x C x R x R
        return pooled

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, output_size={self.output_size}"
