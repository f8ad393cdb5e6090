"""Mask targets and mask pasting with detectron2's numerics.

- Targets: each sample's polygons are shifted into the RoI box, scaled to M x M and rasterised
  with pycocotools (detectron2's ``rasterize_polygons_within_box``), not cropped from a full-image
  bitmap as torchvision's ``project_masks_on_boxes`` does.
- Pasting: each M x M probability map is resampled with ``grid_sample`` at the centres of the
  image pixels its box covers and thresholded at 0.5 (``paste_masks_in_image``); torchvision
  instead resizes an expanded mask with integer box corners.
"""

from typing import List, Sequence, Tuple

import numpy as np
import pycocotools.mask as mask_util
import torch
import torch.nn.functional as F


def rasterize_polygons_within_box(
    polygons: Sequence[np.ndarray], box: np.ndarray, mask_size: int
) -> torch.Tensor:
    """The part of an instance's polygons inside ``box``, as a ``mask_size`` square bitmap.

    Args:
        polygons: the instance's polygons, each [x0, y0, x1, y1, ...] in image pixels.
        box: (4,) float32 XYXY, the RoI.
        mask_size: side M of the target.
    Returns:
        M x M bool.
    """
    # float64 polygons and a float32 box, as detectron2's PolygonMasks and Boxes hold them.
    w, h = box[2] - box[0], box[3] - box[1]
    ratio_w = mask_size / max(w, 0.1)
    ratio_h = mask_size / max(h, 0.1)
    scaled = []
    for p in polygons:
        p = np.asarray(p, dtype=np.float64).copy()
        p[0::2] = (p[0::2] - box[0]) * ratio_w
        p[1::2] = (p[1::2] - box[1]) * ratio_h
        scaled.append(p)
    if not scaled:
        return torch.zeros(mask_size, mask_size, dtype=torch.bool)
    rle = mask_util.merge(mask_util.frPyObjects(scaled, mask_size, mask_size))
    return torch.from_numpy(mask_util.decode(rle).astype(bool))


def mask_targets(
    polygons: List[Sequence[np.ndarray]], boxes: torch.Tensor, mask_size: int
) -> torch.Tensor:
    """Targets of M RoIs. Args: polygons: the matched instance's polygons for each RoI; boxes:
    M x 4. Returns: M x mask_size x mask_size float32 on ``boxes``' device."""
    boxes_np = boxes.detach().to("cpu", torch.float32).numpy()
    if len(polygons) == 0:
        return torch.zeros(0, mask_size, mask_size, device=boxes.device)
    masks = [rasterize_polygons_within_box(p, b, mask_size) for p, b in zip(polygons, boxes_np)]
    return torch.stack(masks).to(boxes.device, torch.float32)


def _paste_region(box: torch.Tensor, height: int, width: int) -> Tuple[int, int, int, int]:
    """Integer pixel bounds (x0, y0, x1, y1) around ``box`` plus one pixel, inside the image:
    outside them the pasted value is 0 (detectron2's ``skip_empty`` bounds)."""
    x0 = max(int(np.floor(box[0])) - 1, 0)
    y0 = max(int(np.floor(box[1])) - 1, 0)
    x1 = min(int(np.ceil(box[2])) + 1, width)
    y1 = min(int(np.ceil(box[3])) + 1, height)
    return x0, y0, x1, y1


def paste_masks_in_image(
    masks: torch.Tensor, boxes: torch.Tensor, image_size: Tuple[int, int], threshold: float = 0.5
) -> torch.Tensor:
    """Paste M x M mask probabilities into their boxes on an image.

    Args:
        masks: N x M x M probabilities.
        boxes: N x 4 XYXY in the image's pixels.
        image_size: (height, width).
        threshold: a pixel is in the mask when its resampled probability is >= threshold.
    Returns:
        N x height x width bool.
    """
    height, width = image_size
    out = torch.zeros(len(masks), height, width, dtype=torch.bool, device=masks.device)
    if len(masks) == 0:
        return out
    masks = masks.float()
    bounds = boxes.detach().to("cpu", torch.float32).numpy()
    for i in range(len(masks)):
        x0, y0, x1, y1 = _paste_region(bounds[i], height, width)
        if x1 <= x0 or y1 <= y0:
            continue
        bx0, by0, bx1, by1 = boxes[i].float()
        # Pixel centres in the box's normalised [-1, 1] coordinates (grid_sample's frame).
        xs = torch.arange(x0, x1, device=masks.device, dtype=torch.float32) + 0.5  # w
        ys = torch.arange(y0, y1, device=masks.device, dtype=torch.float32) + 0.5  # h
        xs = (xs - bx0) / (bx1 - bx0) * 2 - 1  # w
        ys = (ys - by0) / (by1 - by0) * 2 - 1  # h
        grid = torch.stack(
            [xs[None, :].expand(len(ys), -1), ys[:, None].expand(-1, len(xs))], dim=2
        )  # h x w x 2
        pasted = F.grid_sample(masks[i][None, None], grid[None], align_corners=False)  # 1x1xhxw
        out[i, y0:y1, x0:x1] = pasted[0, 0] >= threshold
    return out
