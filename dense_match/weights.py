"""``MODEL.WEIGHTS`` -> the weights of a dense model: which file it is, and what it fills.

Three kinds of file, told apart by their keys:

- a dense checkpoint (``tools/train_dense.py``: "model" with ``features.trunk.*`` keys): the whole
  model, head included;
- an insloc pretraining checkpoint ("model" with ``encoder_q.*``): the query encoder's trunk,
  renamed by :mod:`insloc.transfer.torchvision` (R-FPN, C4 + res5, or MoCo's ResNet);
- a torchvision ResNet state dict (``conv1.weight``, ``layer1.*``; ``fc.*`` is ignored).

Missing trunk weights are an error; a head the file lacks keeps its random initialisation.
"""

import logging

from torch import nn

from insloc.engine.checkpoint import check_checkpoint_task, load_checkpoint
from insloc.transfer.torchvision import convert_to_torchvision, detect_arch

__all__ = ["load_weights"]

logger = logging.getLogger("insloc.dense_match")

TRUNK_PREFIX = "features.trunk."


def _trunk_state(state: dict, path: str) -> dict:
    """The torchvision-named trunk weights of a pretraining checkpoint or a torchvision file."""
    if any(k.startswith("encoder_q.") for k in state):
        arch = detect_arch(state)
        state = convert_to_torchvision(state, arch)
        if arch == "fpn":
            state = {k[len("backbone.body.") :]: v for k, v in state.items() if "body." in k}
        return state
    if "conv1.weight" in state:
        return {k: v for k, v in state.items() if not k.startswith("fc.")}
    raise ValueError(
        f"MODEL.WEIGHTS {path!r}: not a dense checkpoint, an insloc pretraining checkpoint or a "
        "torchvision ResNet state dict (no features.trunk.*, encoder_q.* or conv1.weight keys)"
    )


def load_weights(model: nn.Module, path: str) -> str:
    """Fill ``model`` (a :class:`~dense_match.model.DenseModel`) from ``path``.

    Returns:
        the kind of file: "dense", "pretrain" or "torchvision".
    Raises:
        FileNotFoundError, ValueError: a missing file, or one whose weights do not fit.
    """
    ckpt = load_checkpoint(path)
    check_checkpoint_task(
        ckpt,
        f"MODEL.WEIGHTS {path!r}",
        ("dense matching", "pretraining", "state dict", "unknown"),
        "a dense checkpoint, an insloc pretraining checkpoint or a torchvision ResNet state dict",
    )
    state = ckpt.get("model", ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict):
        raise ValueError(f"MODEL.WEIGHTS {path!r}: expected a dict of tensors")
    if any(k.startswith(TRUNK_PREFIX) for k in state):
        kind, target, state = "dense", model, state
    else:
        kind = "pretrain" if any(k.startswith("encoder_q.") for k in state) else "torchvision"
        target, state = model.features.trunk, _trunk_state(state, path)
    own = target.state_dict()
    # A trunk built with fewer stages than the file holds simply does not use the rest.
    state = {k: v for k, v in state.items() if k in own}
    missing = [k for k in own if k not in state and (kind != "dense" or k.startswith(TRUNK_PREFIX))]
    bad = [k for k, v in state.items() if v.shape != own[k].shape]
    if missing or bad:
        detail = f"missing {missing[:3]}" if missing else f"shape mismatch {bad[:3]}"
        raise ValueError(f"MODEL.WEIGHTS {path!r} does not fit this model ({detail})")
    target.load_state_dict(state, strict=False)
    logger.info(f"loaded {len(state)} tensors from {path} ({kind})")
    return kind
