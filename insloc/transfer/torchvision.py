"""Pretrained query encoder -> torchvision model state dicts, by renaming keys.

The pretraining networks are built from torchvision's modules (``ResNet`` blocks, ``body``/``fpn``,
``FastRCNNConvFCHead``), so conversion only strips prefixes:

- "fpn": ``encoder_q.backbone.*`` -> ``backbone.*`` and the head's convs and first fc
  ``encoder_q.box_head.{0..3,5}.*`` -> ``roi_heads.box_head.{0..3,5}.*``, for
  ``fasterrcnn_resnet50_fpn_v2`` / ``maskrcnn_resnet50_fpn_v2`` (load with ``strict=False``).
- "c4": trunk ``encoder_q.backbone.*`` -> ``*`` and res5 ``encoder_q.box_head.res5.*`` ->
  ``layer4.*``, for ``resnet50`` (only ``fc`` missing).
- "resnet" (MoCo v2): ``encoder_q.backbone.*`` -> ``*``, for ``resnet50``.
- "pretext_resnet" (RotNet, Jigsaw, RelativeLoc, Exemplar on MODEL.BACKBONE.NAME "resnet"):
  ``backbone.*`` -> ``*``, for ``resnet50`` (the trunk a classic pretext task trained).
- "detector" (an insloc fine-tuning checkpoint, ``GeneralizedRCNN``): its trunk, FPN
  ``backbone.body.*`` -> ``*``, C4 ``backbone.*`` -> ``*`` and ``roi_heads.res5.*`` ->
  ``layer4.*``, for ``resnet50``: a trunk trained with labels (the positive control of
  ``benchmarks/bench_transfer.py``) transfers like any pretrained trunk.

The key encoder, the queues, the projection heads and the pretext heads are dropped. The other
pretext trunks (ResNet v2, RevNet, VGG-19-BN, NIN, Exemplar-CNN) have no torchvision twin.

``pretraining_to_detector`` places the same weights in insloc's own detectors
(``insloc.modeling.detection.GeneralizedRCNN``): the trunk goes to ``backbone.*`` (C4: stem and
res2-res4, res5 to ``roi_heads.res5.*``) or ``backbone.body.*`` (FPN), and an FPN pretraining also
gives ``backbone.fpn.*`` and the box head's convs and first fc.
"""

import re
from typing import Dict

import torch

ARCHS = ("fpn", "c4", "resnet", "pretext_resnet", "detector")
# the names of torchvision's ResNet trunk (its ``fc`` aside)
_TORCHVISION_RESNET = re.compile(r"^(conv1|bn1|layer[1-4]\.\d+)\.")


def detect_arch(state_dict: Dict[str, torch.Tensor]) -> str:
    """ "fpn", "c4", "resnet", "pretext_resnet" or "detector" for the "model" state dict of an
    insloc pretraining or fine-tuning checkpoint."""
    if any(k.startswith("rpn.head.") for k in state_dict):  # insloc's (and torchvision's) detectors
        return "detector"
    if any(k.startswith("encoder_q.backbone.fpn.") for k in state_dict):
        return "fpn"
    if any(k.startswith("encoder_q.box_head.res5.") for k in state_dict):
        return "c4"
    if any(k.startswith("encoder_q.backbone.layer4.") for k in state_dict):
        return "resnet"
    if "backbone.bn1.weight" in state_dict and any(
        k.startswith("backbone.layer4.") for k in state_dict
    ):
        return "pretext_resnet"
    if any(k.startswith("backbone.") for k in state_dict):
        raise ValueError(
            "the classic pretext trunk is not a torchvision-style ResNet (MODEL.BACKBONE.NAME "
            "'resnet'), so it has no torchvision names; tools/linear_eval.py reads it as it is"
        )
    raise ValueError(
        "not an insloc pretraining state dict: no encoder_q.backbone.fpn.*, "
        "encoder_q.box_head.res5.* or encoder_q.backbone.layer4.* keys"
    )


def convert_to_torchvision(
    state_dict: Dict[str, torch.Tensor], arch: str
) -> Dict[str, torch.Tensor]:
    """Rename the query encoder's weights to torchvision's names (see the module docstring).

    Args:
        state_dict: "model" of a pretraining checkpoint (encoder_q.*, encoder_k.*, queue_*).
        arch: "fpn", "c4" or "resnet" (``detect_arch``).
    Returns:
        a new dict of the same tensors under torchvision names.
    """
    if arch not in ARCHS:
        raise ValueError(f"arch must be one of {ARCHS}, got {arch!r}")
    if arch == "detector":
        return _detector_trunk(state_dict)
    rules = {
        "fpn": [("encoder_q.backbone.", "backbone.")],
        "c4": [("encoder_q.backbone.", ""), ("encoder_q.box_head.res5.", "layer4.")],
        "resnet": [("encoder_q.backbone.", "")],
        "pretext_resnet": [("backbone.", "")],
    }[arch]
    out = {}
    for key, value in state_dict.items():
        for old, new in rules:
            if key.startswith(old):
                out[new + key[len(old) :]] = value
    if arch == "fpn":
        out.update(_fpn_box_head(state_dict))
    if not out:
        raise ValueError(f"no encoder_q weights of a {arch!r} model in the state dict")
    return out


def _fpn_box_head(state_dict: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """The convs and the first fc of ``FastRCNNConvFCHead``; later fcs have no detector twin."""
    prefix = "encoder_q.box_head."
    head = {k[len(prefix) :]: v for k, v in state_dict.items() if k.startswith(prefix)}
    fcs = [int(k.split(".")[0]) for k, v in head.items() if k.endswith("weight") and v.dim() == 2]
    if not fcs:
        raise ValueError("the FPN box head has no fc layer (encoder_q.box_head.N.weight, 2-d)")
    first_fc = min(fcs)
    return {
        "roi_heads.box_head." + k: v for k, v in head.items() if int(k.split(".")[0]) <= first_fc
    }


def _detector_trunk(state_dict: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """A detector's ResNet under torchvision's names: FPN ``backbone.body.*``; C4 ``backbone.*``
    (stem, res2-res4) and ``roi_heads.res5.*`` (res5, torchvision's ``layer4``)."""
    fpn = any(k.startswith("backbone.body.") for k in state_dict)
    rules = [("backbone.body.", "")] if fpn else [("backbone.", ""), ("roi_heads.res5.", "layer4.")]
    out = {}
    for key, value in state_dict.items():
        for old, new in rules:
            name = new + key[len(old) :]
            if key.startswith(old) and _TORCHVISION_RESNET.match(name):  # not res5's extra norm
                out[name] = value
    if not any(k.startswith("layer4.") for k in out):
        raise ValueError("the detector has no ResNet trunk (backbone.body.* or backbone.layer3.*)")
    return out


DETECTORS = ("c4", "fpn")


def _trunk(state_dict: Dict[str, torch.Tensor], arch: str) -> Dict[str, torch.Tensor]:
    """The query encoder's ResNet under torchvision's names (``conv1``, ..., ``layer4.*``)."""
    if arch == "fpn":
        prefix = "encoder_q.backbone.body."
        return {k[len(prefix) :]: v for k, v in state_dict.items() if k.startswith(prefix)}
    return convert_to_torchvision(state_dict, arch)  # c4 and resnet: plain ResNet names


def pretraining_to_detector(
    state_dict: Dict[str, torch.Tensor], detector: str
) -> Dict[str, torch.Tensor]:
    """Rename a pretraining checkpoint's query encoder to an insloc detector's names.

    Args:
        state_dict: "model" of a pretraining checkpoint (any of ``ARCHS``).
        detector: "c4" (trunk in ``backbone``, res5 in ``roi_heads.res5``) or "fpn" (trunk in
            ``backbone.body``; an FPN pretraining adds ``backbone.fpn`` and the box head).
    Returns:
        a new dict of the same tensors; load it with ``strict=False``.
    """
    if detector not in DETECTORS:
        raise ValueError(f"detector must be one of {DETECTORS}, got {detector!r}")
    arch = detect_arch(state_dict)
    out = {}
    for key, value in _trunk(state_dict, arch).items():
        if detector == "c4":
            out[
                (
                    ("roi_heads.res5." + key[len("layer4.") :])
                    if key.startswith("layer4.")
                    else "backbone." + key
                )
            ] = value
        else:
            out["backbone.body." + key] = value
    if detector == "fpn" and arch == "fpn":
        out.update(convert_to_torchvision(state_dict, "fpn"))  # backbone.fpn.*, box head
    return out
