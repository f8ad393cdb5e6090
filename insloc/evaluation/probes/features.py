"""Frozen features for linear probes, from any checkpoint insloc can read.

``load_trunk`` turns a file (read by :mod:`insloc.transfer.weight_file`) into a trunk with named
taps (``features(x, taps)``):

- a checkpoint of a classic pretext method: its ``backbone.*`` built from the saved config;
- a MoCo or InsLoc checkpoint: the query encoder's ResNet, built as its saved config says;
- a ResNet-18/34/50 trunk in torchvision's names (torchvision's files, MoCo's and InsLoc's official
  checkpoints; ``fc.*`` ignored): depth and width read from shapes.

``extract_features`` pools each requested map globally (or to a small grid) and flattens it.
"""

import logging
import re
from typing import Dict, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from fvcore.common.config import CfgNode

from ...config import get_cfg
from ...config.registry import task_of
from ...data.copy_paste import resize
from ...data.image_io import BadImageError, UnreadableDataError
from ...modeling.backbone import build_backbone, build_resnet
from ...transfer.weight_file import read_weight_file

__all__ = ["Trunk", "extract_features", "load_trunk", "random_trunk", "preprocess_image"]

logger = logging.getLogger("insloc.linear_eval")

IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)

# torchvision ResNets by blocks per stage and block type (True: bottleneck)
_TV_DEPTHS = {((2, 2, 2, 2), False): 18, ((3, 4, 6, 3), False): 34, ((3, 4, 6, 3), True): 50}


class Trunk:
    """A frozen trunk with its input normalisation. Attributes: ``module`` (a ``TappedTrunk``),
    ``pixel_mean``, ``pixel_std``, ``description`` (what it was read from)."""

    def __init__(self, module, pixel_mean, pixel_std, description: str):
        self.module = module.eval()
        for p in module.parameters():
            p.requires_grad_(False)
        self.pixel_mean = tuple(pixel_mean)
        self.pixel_std = tuple(pixel_std)
        self.description = description

    @property
    def tap_names(self) -> list:
        return self.module.tap_names


# What a linear probe reads a trunk from (WeightFile.task)
TRUNK_SOURCES = ("pretraining", "pretext", "trunk")


def _saved_config(weights) -> CfgNode:
    cfg = get_cfg()
    try:
        cfg.merge_from_other_cfg(CfgNode.load_cfg(weights.config))
    except Exception as e:  # an old or foreign config: name the file
        raise ValueError(
            f"checkpoint {weights.path}: its saved config does not load ({e})"
        ) from None
    return cfg


def _load_strict(module, state: dict, path: str, what: str) -> None:
    missing, unexpected = module.load_state_dict(state, strict=False)
    if missing or unexpected:
        first = (missing or unexpected)[0]
        raise ValueError(
            f"checkpoint {path} does not fit {what}: {len(missing)} missing and {len(unexpected)} "
            f"unexpected weights (first: {first!r})"
        )


def load_trunk(path: str) -> Trunk:
    """The trunk stored in ``path`` (see the module docstring); one-line errors name the file."""
    weights = read_weight_file(path).require(
        TRUNK_SOURCES,
        "a pretraining checkpoint (InsLoc, MoCo or a pretext task) or a ResNet trunk "
        "(torchvision's, or MoCo's or InsLoc's official checkpoint) for linear evaluation",
    )
    logger.info(f"weights from {path} ({weights.kind})")
    if weights.task == "pretext":  # any registered trunk, built as the saved config says
        cfg = _saved_config(weights)
        arch, name = cfg.MODEL.META_ARCHITECTURE, cfg.MODEL.BACKBONE.NAME
        module = build_backbone(cfg)
        prefix = "backbone."
        state = {k[len(prefix) :]: v for k, v in weights.tensors.items() if k.startswith(prefix)}
        _load_with_shapes(module, state, path, f"a {arch} trunk {name!r} of its config")
        return Trunk(module, cfg.MODEL.PIXEL_MEAN, cfg.MODEL.PIXEL_STD, f"{arch} {name} ({path})")
    state = weights.resnet_trunk()
    if weights.config:  # an insloc pretraining: the trunk and normalisation of its config
        cfg = _saved_config(weights)
        r, arch = cfg.MODEL.RESNETS, cfg.MODEL.META_ARCHITECTURE
        module = build_resnet(r.DEPTH, r.WIDTH, r.NORM)
        _load_with_shapes(module, state, path, f"a ResNet-{r.DEPTH} of width {r.WIDTH}")
        return Trunk(
            module, cfg.MODEL.PIXEL_MEAN, cfg.MODEL.PIXEL_STD, f"{arch} ResNet-{r.DEPTH} ({path})"
        )
    depth, width = _resnet_shape(state, path)
    module = build_resnet(depth, width, "BN")
    name = weights.kind.replace(" (ResNet)", "")
    _load_with_shapes(module, state, path, f"a {name} ResNet-{depth} of width {width}")
    return Trunk(module, IMAGENET_MEAN, IMAGENET_STD, f"{name} ResNet-{depth} ({path})")


def _resnet_shape(state: dict, path: str) -> tuple:
    """(depth, width) of a ResNet trunk in torchvision's names, read from its names and shapes."""
    blocks = []
    for i in range(1, 5):
        ids = {int(m[1]) for k in state for m in [re.match(rf"layer{i}\.(\d+)\.", k)] if m}
        blocks.append(len(ids))
    bottleneck = "layer1.0.conv3.weight" in state
    depth = _TV_DEPTHS.get((tuple(blocks), bottleneck))
    if depth is None:
        raise ValueError(
            f"checkpoint {path}: a torchvision ResNet with {tuple(blocks)} blocks per stage "
            f"({'bottleneck' if bottleneck else 'basic'}); only ResNet-18, 34 and 50 are supported"
        )
    return depth, int(state["conv1.weight"].shape[0])


def _load_with_shapes(module, state: dict, path: str, what: str) -> None:
    own = module.state_dict()
    for k, v in state.items():
        if k in own and own[k].shape != v.shape:
            raise ValueError(
                f"checkpoint {path} does not fit {what}: {k} has shape {tuple(v.shape)}, "
                f"expected {tuple(own[k].shape)}"
            )
    _load_strict(module, state, path, what)


def random_trunk(cfg, seed: int = 0) -> Trunk:
    """The randomly initialised trunk of ``cfg`` (the baseline every probe is compared with)."""
    torch.manual_seed(seed)
    if task_of(cfg.MODEL.META_ARCHITECTURE) == "pretext":
        module = build_backbone(cfg)
    else:
        r = cfg.MODEL.RESNETS
        module = build_resnet(r.DEPTH, r.WIDTH, r.NORM)
    return Trunk(module, cfg.MODEL.PIXEL_MEAN, cfg.MODEL.PIXEL_STD, "random init")


def preprocess_image(image: np.ndarray, resize_to: int, crop: int) -> np.ndarray:
    """Shorter side to ``resize_to`` (0: keep), then a centre ``crop`` square (0: keep all)."""
    if resize_to:
        h, w = image.shape[:2]
        s = resize_to / min(h, w)
        image = resize(image, (max(1, round(h * s)), max(1, round(w * s))))
    if crop:
        h, w = image.shape[:2]
        if min(h, w) < crop:
            image = resize(image, (max(crop, h), max(crop, w)))
            h, w = image.shape[:2]
        top, left = (h - crop) // 2, (w - crop) // 2
        image = image[top : top + crop, left : left + crop]
    return image


@torch.no_grad()
def extract_features(
    trunk: Trunk,
    dataset,
    layers: Sequence[str],
    *,
    grid: int = 1,
    resize_to: int = 0,
    crop: int = 0,
    batch_size: int = 64,
    device="cpu",
    skipped: Optional[set] = None,
) -> Dict[str, np.ndarray]:
    """Pooled features of every image of ``dataset`` at each of ``layers``.

    Args:
        trunk: from ``load_trunk`` or ``random_trunk``.
        dataset: a ``LabelledImages``.
        layers: tap names of the trunk (an unknown name is an error listing the valid ones).
        grid: pool each map to grid x grid cells (1: global average pooling).
        resize_to, crop: ``preprocess_image``; every image must end up the same size.
        batch_size: images per forward pass.
        device: where the trunk runs.
        skipped: when given, an image that cannot be read is left out and its index added to this
            set (as training skips and counts bad files); None: BadImageError is raised.
    Returns:
        {layer: N' x (C_layer * grid * grid) float32}, N' the images read, in dataset order.
    """
    from ...modeling.backbone.taps import check_taps

    check_taps(layers, trunk.tap_names, trunk.description)
    module = trunk.module.to(device)
    mean = torch.tensor(trunk.pixel_mean, device=device).view(1, 3, 1, 1)
    std = torch.tensor(trunk.pixel_std, device=device).view(1, 3, 1, 1)
    out = {name: [] for name in layers}
    for start in range(0, len(dataset), batch_size):
        images = []
        for i in range(start, min(len(dataset), start + batch_size)):
            try:
                images.append(preprocess_image(dataset.load(i), resize_to, crop))
            except BadImageError as e:
                if skipped is None:
                    raise
                if i not in skipped:
                    logger.warning("skipping unreadable image: %s", e)
                skipped.add(i)
        if not images:
            continue
        x = (
            torch.from_numpy(np.stack(images)).to(device).permute(0, 3, 1, 2).float()
        )  # B x 3 x H x W
        x = (x - mean) / std
        maps = module.features(x, layers)  # name: B x C x h x w
        for name, m in maps.items():
            out[name].append(F.adaptive_avg_pool2d(m.float(), grid).flatten(1).cpu())  # B x C g g
    if not any(out.values()):
        raise UnreadableDataError(f"{dataset.description}: none of its images can be read")
    return {name: torch.cat(v).numpy() for name, v in out.items()}
