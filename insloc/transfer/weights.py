"""``MODEL.WEIGHTS``: initial weights of a detection model from any of the files users have.

Files are read and recognised by :mod:`insloc.transfer.weight_file`; a detector takes these kinds:

- an insloc pretraining checkpoint: the query encoder, its architecture (FPN, C4, plain ResNet)
  detected from its names;
- a bare ResNet trunk (torchvision's own files, ``tools/convert_checkpoint.py --to torchvision`` of
  a C4, MoCo or detector trunk, MoCo's and InsLoc's official checkpoints): the trunk, res5 included;
- a state dict in torchvision's detector names (an FPN export, a torchvision detector's weights);
- detectron2 weights (a ``.pkl``: MoCo's, InsLoc's and insloc's exports; or detectron2's ``.pth``);
- an insloc fine-tuning checkpoint (the whole detector);
- "" (nothing): the model keeps its random initialisation.

Every tensor is placed by name; a file whose tensors match no parameter of the model is an error,
never a silent random initialisation, and so is a file that fills less than half of the model's
ResNet trunk (a partly matching naming scheme: the rest would stay random); a trunk filled in part
is named in a warning. Predictor weights for another number of classes (shapes differing in the
class dimension) are skipped and reported; any other shape mismatch is an error (another
architecture). An insloc checkpoint records the pixel normalisation it was trained with: another
MODEL.PIXEL_MEAN / PIXEL_STD in the detector is an error, since the weights would see inputs of
another scale than they learned on.
"""

import logging
from collections import OrderedDict, defaultdict
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import torch
import yaml
from torch import nn

from .detectron2_names import from_detectron2
from .torchvision import pretraining_to_detector
from .weight_file import WeightFile, read_weight_file


@dataclass
class LoadReport:
    """What ``load_detection_weights`` did.

    Attributes:
        path: the file ("" for random init).
        kind: "random", or the file's kind (:mod:`insloc.transfer.weight_file`): "insloc
            pretraining (<arch>)", "torchvision (ResNet)", "torchvision",
            "detectron2" or "insloc fine-tuning".
        loaded: model keys that received a tensor from the file.
        missing: model keys the file has no tensor for (they keep their initialisation).
        unexpected: names from the file (after renaming) that the model does not have.
        skipped: {model key: (file shape, model shape)} for predictor tensors of another class
            count (shapes differing in the first dimension only).
    """

    path: str
    kind: str
    loaded: List[str] = field(default_factory=list)
    missing: List[str] = field(default_factory=list)
    unexpected: List[str] = field(default_factory=list)
    skipped: Dict[str, Tuple[tuple, tuple]] = field(default_factory=dict)
    trunk: List[str] = field(default_factory=list)  # the model's trunk keys (trunk_keys)


def load_detection_weights(
    model: nn.Module, path: str, logger: Optional[logging.Logger] = None
) -> LoadReport:
    """Load ``path`` into ``model`` (in place) and log a table of what was loaded, by module.

    Args:
        model: a detection model (its ``state_dict`` names are the targets).
        path: ``MODEL.WEIGHTS``; "" leaves the model as it is.
        logger: where the table goes (default: this module's logger).
    Returns:
        a :class:`LoadReport`.
    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: an unreadable or unsafe file, a file matching no parameter of the model, or
            a tensor whose shape differs from the model's outside the class predictors.
    """
    logger = logger or logging.getLogger(__name__)
    if not path:
        logger.info("MODEL.WEIGHTS is empty: the detector keeps its random initialisation")
        return LoadReport(path="", kind="random", missing=list(model.state_dict()))
    weights = read_weight_file(path)
    kind = weights.kind
    try:
        state = detector_state(weights, model)
    except ValueError as e:  # e.g. a detectron2 name insloc's detectors have no place for
        message = str(e)
        raise ValueError(message if path in message else f"{path}: {message}") from None
    report = _match(model, state, path, kind)
    report.trunk = trunk_keys(model.state_dict())
    filled = set(report.loaded).intersection(report.trunk)
    if report.trunk and len(filled) < len(report.trunk) / 2:
        raise ValueError(
            f"{path} ({kind}) fills only {len(filled)} of the {len(report.trunk)} tensors of the "
            f"model's ResNet trunk (e.g. {report.trunk[0]}); the file's names (e.g. "
            f"{next(iter(state))}) do not follow a layout insloc reads, or it is another network"
        )
    model.load_state_dict({k: state[k] for k in report.loaded}, strict=False)
    logger.info(format_report(report))
    unfilled = [k for k in report.trunk if k not in filled]
    if unfilled:
        logger.warning(
            f"{len(unfilled)} of the {len(report.trunk)} trunk tensors are not in {path} and keep "
            f"their random initialisation: {', '.join(unfilled[:8])}"
        )
    return report


def trunk_keys(state: Dict[str, torch.Tensor]) -> List[str]:
    """The keys of a detector's ResNet trunk (FPN: ``backbone.body.*``; C4: ``backbone.*`` and
    res5's blocks in ``roi_heads.res5.*``, not its extra norm), BN batch counters aside: the part
    every pretrained initialisation is expected to fill."""
    fpn = any(k.startswith("backbone.body.") for k in state)
    prefixes = ("backbone.body.",) if fpn else ("backbone.", "roi_heads.res5.")
    return [
        k
        for k in state
        if k.startswith(prefixes)
        and not k.endswith("num_batches_tracked")
        and not k.startswith("roi_heads.res5.norm.")
    ]


# What a detector takes (WeightFile.task); a pretext trunk or a dense model is refused, naming it.
DETECTION_SOURCES = ("pretraining", "detection", "trunk", "torchvision", "detectron2", "state dict")


def detector_state(weights: WeightFile, model: nn.Module) -> Dict[str, torch.Tensor]:
    """The tensors of ``weights`` under the names of ``model``'s state dict (a detector's)."""
    weights.require(
        DETECTION_SOURCES,
        "an insloc pretraining or fine-tuning checkpoint, a torchvision state dict or detectron2 "
        "weights (what a detector's MODEL.WEIGHTS takes)",
    )
    targets = list(model.state_dict())
    detector = "c4" if any(k.startswith("roi_heads.res5.") for k in targets) else "fpn"
    if weights.config:
        _check_normalisation(yaml.safe_load(weights.config), model, weights.path)
    if weights.task == "detectron2":
        return from_detectron2(_bare_detectron2_names(weights.tensors, detector))
    if weights.task == "pretraining":
        return pretraining_to_detector(weights.tensors, detector)
    if weights.task == "trunk":  # placed like the trunk of a MoCo checkpoint
        trunk = {"encoder_q.backbone." + k: v for k, v in weights.resnet_trunk().items()}
        return pretraining_to_detector(trunk, detector)
    return weights.tensors  # a detector's, or torchvision's names: placed by name


def _check_normalisation(saved: dict, model: nn.Module, path: str) -> None:
    """The pixel normalisation an insloc checkpoint was trained with must be the model's."""
    mean, std = getattr(model, "pixel_mean", None), getattr(model, "pixel_std", None)
    saved = (saved or {}).get("MODEL", {})
    if mean is None or std is None or "PIXEL_MEAN" not in saved or "PIXEL_STD" not in saved:
        return
    theirs = [float(v) for v in (*saved["PIXEL_MEAN"], *saved["PIXEL_STD"])]
    ours = [float(v) for v in (*mean.flatten(), *std.flatten())]
    if any(abs(a - b) > 1e-3 for a, b in zip(theirs, ours)):
        raise ValueError(
            f"{path} was trained with MODEL.PIXEL_MEAN {theirs[:3]} and MODEL.PIXEL_STD "
            f"{theirs[3:]}, this model normalises with {ours[:3]} and {ours[3:]}: give the "
            "fine-tuning the checkpoint's values"
        )


def _bare_detectron2_names(
    state: Dict[str, torch.Tensor], detector: str
) -> Dict[str, torch.Tensor]:
    """MoCo's converter writes trunk names without "backbone." (``stem.*``, ``res2.*``..``res5.*``)
    for detectron2's suffix matching; give them the full names in a ``detector`` ("c4", "fpn")."""
    if not any(k.startswith(("stem.", "res2.")) for k in state):
        return state
    trunk = "backbone." if detector == "c4" else "backbone.bottom_up."
    res5 = "roi_heads." if detector == "c4" else trunk
    out = OrderedDict()
    for k, v in state.items():
        if k.startswith(("stem.", "res2.", "res3.", "res4.")):
            out[trunk + k] = v
        elif k.startswith("res5."):
            out[res5 + k] = v
        else:
            out[k] = v
    return out


def is_predictor(name: str) -> bool:
    """Whether a model key belongs to a class predictor."""
    return "predictor" in name


def _other_class_count(name: str, theirs: torch.Size, ours: torch.Size) -> bool:
    """A predictor tensor whose shapes differ in the class dimension (the first) only."""
    return is_predictor(name) and len(theirs) == len(ours) and theirs[1:] == ours[1:]


def _match(model: nn.Module, state: Dict[str, torch.Tensor], path: str, kind: str) -> LoadReport:
    report = LoadReport(path=path, kind=kind)
    own = model.state_dict()
    for name, value in state.items():
        if name not in own:
            report.unexpected.append(name)
        elif tuple(value.shape) == tuple(own[name].shape):
            report.loaded.append(name)
        elif _other_class_count(name, value.shape, own[name].shape):
            report.skipped[name] = (tuple(value.shape), tuple(own[name].shape))
        else:
            raise ValueError(
                f"{path}: {name} has shape {tuple(value.shape)} in the file but "
                f"{tuple(own[name].shape)} in the model: the file is of another architecture "
                "(depth, width, norm or head)"
            )
    if not report.loaded:
        raise ValueError(
            f"{path} ({kind}) matches no parameter of the model: first names in the file "
            f"{list(state)[:3]}, in the model {list(own)[:3]}"
        )
    loaded = set(report.loaded)
    report.missing = [k for k in own if k not in loaded]
    return report


def module_group(name: str) -> str:
    """The row of the load table a key is counted in."""
    if is_predictor(name):
        return "predictors"
    parts = name.split(".")
    if parts[0] == "backbone":
        return "backbone.fpn" if any(p.startswith("fpn") for p in parts[1:3]) else "backbone"
    if parts[0] == "roi_heads" and len(parts) > 2:
        return ".".join(parts[:2])
    return parts[0]


def format_report(report: LoadReport, max_names: int = 8) -> str:
    """A table of loaded / missing / unexpected / skipped counts by module, then the names."""
    counts = defaultdict(lambda: [0, 0, 0, 0])
    for col, names in enumerate((report.loaded, report.missing, report.unexpected, report.skipped)):
        for name in names:
            counts[module_group(name)][col] += 1
    header = ("module", "loaded", "missing", "unexpected", "skipped (shape)")
    rows = [header] + [(g, *map(str, c)) for g, c in sorted(counts.items())]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = [f"weights from {report.path} ({report.kind}):"]
    if report.trunk:
        filled = len(set(report.loaded).intersection(report.trunk))
        lines[0] += f" {filled} of the {len(report.trunk)} trunk tensors"
    for r in rows:
        lines.append("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)))
    for label, names in (("missing", report.missing), ("unexpected", report.unexpected)):
        if names:
            shown = ", ".join(names[:max_names])
            more = f" ... (+{len(names) - max_names})" if len(names) > max_names else ""
            lines.append(f"  {label}: {shown}{more}")
    if report.skipped:
        name, (theirs, ours) = next(iter(report.skipped.items()))
        lines.append(
            f"  predictors not loaded (another number of classes; e.g. {name}: file {theirs}, "
            f"model {ours}): {len(report.skipped)} tensors keep their initialisation"
        )
    return "\n".join(lines)
