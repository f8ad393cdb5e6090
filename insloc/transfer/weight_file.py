"""The one reader of weight files: every kind of file insloc accepts, recognised by its content.

:func:`read_weight_file` returns a :class:`WeightFile`: the file's tensors and its *kind*, one of

=========================== ===================================================================
kind                        what the file is (``tensors`` holds)
=========================== ===================================================================
insloc pretraining (<arch>) ``tools/pretrain_net.py``'s MoCo or InsLoc checkpoint ("model":
                            ``encoder_q.*``, ``encoder_k.*``, queues); <arch> "fpn", "c4" or
                            "resnet" (:func:`~insloc.transfer.torchvision.detect_arch`)
insloc pretext (<method>)   a classic pretext task's checkpoint ("model": ``backbone.*`` and
                            the task's head)
insloc fine-tuning          ``tools/train_net.py``'s detector ("model": ``backbone.*``,
                            ``rpn.*``, ``roi_heads.*``)
insloc dense                ``tools/train_dense.py``'s dense model ("model":
                            ``features.trunk.*``, ``head.*``)
insloc checkpoint           a checkpoint ("model") whose names are none of the above
torchvision (ResNet)        a ResNet state dict in torchvision's names (``conv1``,
                            ``layer1``-``layer4``, ``fc``): torchvision's own files, and
                            ``convert_checkpoint.py --to torchvision`` of a C4, MoCo, pretext or
                            detector trunk
torchvision                 another state dict in torchvision's detector names (``backbone.body``,
                            ``backbone.fpn``, ``rpn.head``, ``roi_heads``): an FPN export
MoCo (official)             facebookresearch/moco's ``checkpoint_*.pth.tar`` ("state_dict":
                            ``module.encoder_q.*``); ``tensors``: its ResNet, torchvision names
InsLoc (official)           the official InsLoc release's mmdetection checkpoint ("state_dict":
                            ``backbone.*``, ``neck.*``, ``roi_head.*``, ``*_k.*``);
                            ``tensors``: its ResNet (res5 of C4 included), torchvision names
detectron2                  detectron2's names: a ``.pkl`` (MoCo's, InsLoc's and insloc's
                            exports, the model zoo's; read by the restricted unpickler) or a
                            ``.pth`` of detectron2's own checkpointer
state dict                  a state dict of tensors of no layout above
unknown                     a file that loads but holds no state dict
=========================== ===================================================================

A missing file is a ``FileNotFoundError``; a file that cannot be read, or that names Python
objects a weights-only load refuses, is a ``ValueError`` with the same words whatever the tool
(:mod:`insloc.utils.safe_pickle`). What a tool accepts is its own choice
(:meth:`WeightFile.require`); every tool names a file by its kind, the same way.
"""

import os
import re
import warnings
from dataclasses import dataclass, field
from typing import Dict

import torch
import yaml

from ..config.registry import task_of
from ..utils.safe_pickle import refused_global, unreadable_error, unsafe_error
from .pickle_io import read_detectron2_pkl
from .torchvision import convert_to_torchvision, detect_arch

__all__ = ["WeightFile", "load_checkpoint", "read_weight_file"]

EXPECTED = "a PyTorch checkpoint or state dict (.pth), or a detectron2 .pkl"

# names only detectron2's models have (insloc's and torchvision's use backbone.body / rpn.head)
DETECTRON2_ONLY = ("proposal_generator.", "backbone.bottom_up.", "backbone.stem.", "backbone.res")
_DETECTOR = ("backbone.body.", "backbone.fpn.", "rpn.head.", "roi_heads.")
_RESNET = re.compile(r"^(conv1|bn1|layer[1-4]\.\d+)\.")
_TASKS = {
    "insloc pretraining": "pretraining",
    "insloc pretext": "pretext",
    "insloc fine-tuning": "detection",
    "insloc dense": "dense matching",
    "torchvision (ResNet)": "trunk",
    "MoCo (official)": "trunk",
    "InsLoc (official)": "trunk",
    "torchvision": "torchvision",
    "detectron2": "detectron2",
    "state dict": "state dict",
    "insloc checkpoint": "state dict",
}
# the task of an insloc checkpoint without a registered meta_arch, from its names
_TASK_BY_NAMES = (
    (("rpn.", "roi_heads.", "proposal_generator."), "detection"),
    (("features.trunk.",), "dense matching"),
    (("encoder_q.",), "pretraining"),
)


@dataclass
class WeightFile:
    """A weight file, read. Attributes: ``path``; ``kind`` (module docstring); ``tensors``
    ({name: tensor}, the names of the kind, "module." of a DDP wrapper removed); ``checkpoint``
    (the whole dict of an insloc checkpoint: "iteration", "config", "meta_arch", ...; else {})."""

    path: str
    kind: str
    tensors: Dict[str, torch.Tensor] = field(default_factory=dict)
    checkpoint: dict = field(default_factory=dict)

    @property
    def meta_arch(self) -> str:
        arch = self.checkpoint.get("meta_arch")
        return arch if isinstance(arch, str) else ""

    @property
    def config(self) -> str:
        """The yaml config an insloc checkpoint was trained with ("" when it has none)."""
        config = self.checkpoint.get("config")
        return config if isinstance(config, str) else ""

    @property
    def task(self) -> str:
        """What the file is for the tools that choose among kinds: "pretraining", "pretext",
        "detection", "dense matching" (insloc checkpoints), "trunk" (a bare ResNet: torchvision's,
        MoCo's or InsLoc's official), "torchvision", "detectron2", "state dict" or "unknown"."""
        return _TASKS.get(self.kind) or _TASKS.get(self.kind.split(" (")[0], "unknown")

    @property
    def description(self) -> str:
        """The kind in words, for messages: "an InsLoc pretraining checkpoint", "a detection
        (fine-tuning) checkpoint", "a torchvision ResNet state dict", ..."""
        if self.task in ("pretraining", "pretext"):
            if not self.meta_arch:
                return f"a {self.task} checkpoint"
            article = "an" if self.meta_arch[0] in "AEIOU" else "a"
            return f"{article} {self.meta_arch} {self.task} checkpoint"
        return {
            "insloc fine-tuning": "a detection (fine-tuning) checkpoint",
            "insloc dense": "a dense matching checkpoint (tools/train_dense.py)",
            "insloc checkpoint": "an insloc checkpoint of unknown layout (no name insloc knows)",
            "torchvision (ResNet)": "a torchvision ResNet state dict",
            "torchvision": "a state dict in torchvision's detector names",
            "MoCo (official)": "MoCo's official pretraining checkpoint",
            "InsLoc (official)": "the official InsLoc release's pretraining checkpoint",
            "detectron2": "detectron2 weights",
            "state dict": "a state dict of tensors",
        }.get(self.kind, "neither a checkpoint (no 'model' state dict) nor a state dict")

    def require(self, tasks, expected: str) -> "WeightFile":
        """Refuse a file of another task (values of :attr:`task`), naming what it is.

        Raises:
            ValueError: "<path> is a dense matching checkpoint ..., not <expected>".
        """
        if self.task not in tasks:
            raise ValueError(f"{self.path} is {self.description}, not {expected}")
        return self

    def resnet_trunk(self) -> Dict[str, torch.Tensor]:
        """The file's ResNet trunk under torchvision's names (``conv1``, ``bn1``,
        ``layer1``-``layer4``; no ``fc``): the query encoder's of a pretraining, the trunk of a
        pretext task on a "resnet", of a detector, of a dense model, or the file itself.

        Raises:
            ValueError: the file holds no torchvision-style ResNet (the message says what it is).
        """
        state = self.tensors
        if self.task in ("pretraining", "pretext", "detection"):
            try:
                state = convert_to_torchvision(state, detect_arch(state))
            except ValueError as e:
                raise ValueError(f"{self.path} ({self.kind}): {e}") from None
            body = "backbone.body."
            if any(k.startswith(body) for k in state):  # an FPN pretraining: its ResNet
                state = {k[len(body) :]: v for k, v in state.items() if k.startswith(body)}
        elif self.task == "dense matching":
            prefix = "features.trunk."
            state = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
        trunk = {k: v for k, v in state.items() if _RESNET.match(k)}
        if not any(k.startswith("layer") for k in trunk):
            raise ValueError(
                f"{self.path} is {self.description}, which holds no ResNet trunk in torchvision's "
                f"names (first names: {list(self.tensors)[:3]})"
            )
        return trunk


def load_checkpoint(path: str):
    """``torch.load`` of ``path`` without executing code from it (``weights_only=True``): the
    object as saved. Every ``.pth`` insloc reads comes through here.

    Raises:
        FileNotFoundError: no such file.
        ValueError: a folder, an empty, text, truncated or non-PyTorch file, or one naming Python
            objects a weights-only load refuses; the message says which, once.
    """
    if not os.path.exists(path):
        raise FileNotFoundError(f"weights file {path!r} does not exist")
    if os.path.isdir(path):
        raise unreadable_error(path, IsADirectoryError(path), EXPECTED)
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols it may not support
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a corrupt file, or one holding arbitrary objects
        name = refused_global(e)
        raise (unsafe_error(path, name) if name else unreadable_error(path, e, EXPECTED)) from None


def read_weight_file(path: str) -> WeightFile:
    """Read ``path`` and recognise its kind (module docstring)."""
    if path.endswith(".pkl"):
        return WeightFile(path, "detectron2", read_detectron2_pkl(path))
    obj = load_checkpoint(path)
    if not isinstance(obj, dict):
        return WeightFile(path, "unknown")
    if isinstance(obj.get("model"), dict):
        return _insloc_checkpoint(path, obj)
    if isinstance(obj.get("state_dict"), dict):  # MoCo's and mmdetection's checkpoints
        official = _official_trunk(path, _strip_module(obj["state_dict"]))
        if official is not None:
            return official
        obj = obj["state_dict"]
    state = _strip_module(obj)
    if not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        return WeightFile(path, "unknown")
    return WeightFile(path, _state_dict_kind(state), state)


def _insloc_checkpoint(path: str, ckpt: dict) -> WeightFile:
    state = _strip_module(ckpt["model"])
    if not isinstance(ckpt.get("meta_arch"), str) and isinstance(ckpt.get("config"), str):
        ckpt = {**ckpt, "meta_arch": _saved_meta_arch(ckpt["config"])}  # an older checkpoint
    task = task_of(ckpt.get("meta_arch", ""))
    if task == "unknown":
        task = next((t for prefixes, t in _TASK_BY_NAMES if _any_starts(state, prefixes)), task)
    if _any_starts(state, DETECTRON2_ONLY):  # detectron2's own model_*.pth
        return WeightFile(path, "detectron2", state, ckpt)
    if task == "pretraining":
        return WeightFile(path, f"insloc pretraining ({detect_arch(state)})", state, ckpt)
    if task == "pretext":
        return WeightFile(path, f"insloc pretext ({ckpt['meta_arch']})", state, ckpt)
    if task == "dense matching":
        return WeightFile(path, "insloc dense", state, ckpt)
    if task == "detection":
        return WeightFile(path, "insloc fine-tuning", state, ckpt)
    return WeightFile(path, "insloc checkpoint", state, ckpt)


def _saved_meta_arch(config: str) -> str:
    try:
        arch = yaml.safe_load(config)["MODEL"]["META_ARCHITECTURE"]
    except (yaml.YAMLError, KeyError, TypeError):
        return ""
    return arch if isinstance(arch, str) else ""


def _official_trunk(path: str, state: dict):
    """MoCo's (``encoder_q.*``) or the official InsLoc's (``backbone.*`` beside ``neck.*`` /
    ``roi_head.*``) checkpoint, as its ResNet under torchvision's names; None for other files."""
    if _any_starts(state, ("encoder_q.conv1.",)):
        rules, kind = [("encoder_q.", "")], "MoCo (official)"
    elif _any_starts(state, ("backbone.conv1.",)) and _any_starts(state, ("neck.", "roi_head.")):
        rules = [("backbone.", ""), ("roi_head.shared_head.layer4.", "layer4.")]
        kind = "InsLoc (official)"
    else:
        return None
    trunk = {}
    for key, value in state.items():
        for old, new in rules:
            if key.startswith(old) and _RESNET.match(new + key[len(old) :]):
                trunk[new + key[len(old) :]] = value
    return WeightFile(path, kind, trunk)


def _state_dict_kind(state: dict) -> str:
    if _any_starts(state, DETECTRON2_ONLY):
        return "detectron2"
    if _any_starts(state, ("layer4.",)) and all(
        _RESNET.match(k) or k.startswith("fc.") for k in state
    ):
        return "torchvision (ResNet)"
    if _any_starts(state, _DETECTOR):
        return "torchvision"
    return "state dict"


def _any_starts(state: dict, prefixes) -> bool:
    return any(k.startswith(tuple(prefixes)) for k in state)


def _strip_module(state: dict) -> dict:
    """Names saved from a ``DistributedDataParallel`` wrapper start with "module."."""
    if state and all(isinstance(k, str) and k.startswith("module.") for k in state):
        return {k[len("module.") :]: v for k, v in state.items()}
    return state
