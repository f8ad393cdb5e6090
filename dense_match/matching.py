"""Keypoint transfer between two dense descriptor maps.

Methods (``MATCHING.METHOD``):

- "nn": the target location of highest cosine similarity with the source keypoint's descriptor;
- "mutual_nn": the same, kept only when that target location's own nearest source location lies
  within one map cell of the keypoint; others are returned as NaN (a wrong transfer);
- "soft_argmax": the softmax(similarity / temperature)-weighted mean of target location centres;
- "identity": the point at the same relative position in the target, whatever the descriptors:
  the floor a descriptor must beat (a random network's features score close to it, because
  zero padding makes them encode position).

With sigma weighting the logits are similarity / temperature - log sigma_target: each target
location's evidence is divided by its inverse confidence (soft-argmax weights exp(s / T) / sigma;
nearest neighbour takes the argmax of the same logits).
"""

import torch
import torch.nn.functional as F

from .heads.sampling import location_centres, sample_at

__all__ = ["METHODS", "transfer_keypoints"]

METHODS = ("nn", "mutual_nn", "soft_argmax", "identity")


def transfer_keypoints(
    src_desc: torch.Tensor,
    trg_desc: torch.Tensor,
    src_kps: torch.Tensor,
    src_size,
    trg_size,
    method: str = "nn",
    temperature: float = 0.02,
    trg_sigma: torch.Tensor = None,
) -> torch.Tensor:
    """Transfer source keypoints to the target image.

    Args:
        src_desc: D x h x w unit descriptors of the source image.
        trg_desc: D x h' x w' of the target image.
        src_kps: K x 2 (x, y) source keypoints in pixels of the source image (``src_size``).
        src_size, trg_size: (H, W) of the images the descriptor maps cover.
        method: one of METHODS.
        temperature: soft-argmax temperature (and the scale of the sigma weighting).
        trg_sigma: 1 x h' x w' inverse confidences for sigma weighting, or None.
    Returns:
        K x 2 predicted target points in pixels of the target image (NaN: no mutual match).
    """
    if method not in METHODS:
        raise ValueError(f"MATCHING.METHOD = {method!r}: expected one of {METHODS}")
    if method == "identity":
        scale = src_kps.new_tensor([trg_size[1] / src_size[1], trg_size[0] / src_size[0]])
        return (src_kps.float() + 0.5) * scale - 0.5  # K x 2, pixel centres rescaled
    d, h, w = trg_desc.shape
    query = F.normalize(sample_at(src_desc[None], src_kps[None].float(), src_size)[0], dim=-1)
    targets = trg_desc.reshape(d, h * w)  # D x h'w'
    sim = query @ targets  # K x h'w' cosine similarities
    logits = sim / temperature
    if trg_sigma is not None:
        logits = logits - torch.log(trg_sigma.reshape(1, h * w))
    centres = location_centres((h, w), trg_size, device=trg_desc.device)  # h'w' x 2
    if method == "soft_argmax":
        return torch.softmax(logits, dim=1) @ centres  # K x 2
    best = logits.argmax(dim=1)  # K
    pred = centres[best]  # K x 2
    if method == "mutual_nn":
        sh, sw = src_desc.shape[-2:]
        back = (targets[:, best].T @ src_desc.reshape(d, sh * sw)).argmax(dim=1)  # K
        src_centres = location_centres((sh, sw), src_size, device=src_desc.device)
        cell = max(src_size[0] / sh, src_size[1] / sw)
        far = (src_centres[back] - src_kps.float()).abs().amax(dim=1) > cell
        pred = pred.masked_fill(far[:, None], float("nan"))
    return pred
