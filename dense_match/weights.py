"""``MODEL.WEIGHTS`` -> the weights of a dense model: what the file is, and what it fills.

The file is read and recognised by :mod:`insloc.transfer.weight_file`; a dense model takes

- a dense checkpoint (``tools/train_dense.py``): the whole model, head included;
- an insloc pretraining checkpoint: the query encoder's trunk (R-FPN, C4 + res5, or MoCo's ResNet);
- a ResNet trunk in torchvision's names (torchvision's files, ``convert_checkpoint.py --to
  torchvision`` exports, MoCo's and InsLoc's official checkpoints; ``fc.*`` is ignored).

Missing trunk weights are an error; a head the file lacks keeps its random initialisation.
"""

import logging

from torch import nn

from insloc.transfer.weight_file import read_weight_file

__all__ = ["load_weights"]

logger = logging.getLogger("insloc.dense_match")

TRUNK_PREFIX = "features.trunk."
# What a dense model takes (WeightFile.task)
DENSE_SOURCES = ("dense matching", "pretraining", "trunk")


def load_weights(model: nn.Module, path: str) -> str:
    """Fill ``model`` (a :class:`~dense_match.model.DenseModel`) from ``path``.

    Returns:
        the file's kind (:mod:`insloc.transfer.weight_file`).
    Raises:
        FileNotFoundError, ValueError: a missing file, or one whose weights do not fit.
    """
    weights = read_weight_file(path).require(
        DENSE_SOURCES,
        "a dense checkpoint, an insloc pretraining checkpoint or a ResNet trunk (torchvision's, or "
        "MoCo's or InsLoc's official checkpoint) for a dense model's MODEL.WEIGHTS",
    )
    dense = weights.task == "dense matching"
    target = model if dense else model.features.trunk
    state = weights.tensors if dense else weights.resnet_trunk()
    own = target.state_dict()
    # A trunk built with fewer stages than the file holds simply does not use the rest.
    state = {k: v for k, v in state.items() if k in own}
    missing = [k for k in own if k not in state and (not dense or k.startswith(TRUNK_PREFIX))]
    bad = [k for k, v in state.items() if v.shape != own[k].shape]
    if missing or bad:
        detail = f"missing {missing[:3]}" if missing else f"shape mismatch {bad[:3]}"
        raise ValueError(f"MODEL.WEIGHTS {path!r} does not fit this model ({detail})")
    target.load_state_dict(state, strict=False)
    logger.info(f"weights from {path} ({weights.kind}): {len(state)} tensors loaded")
    return weights.kind
