"""detectron2's ``.pkl`` weight files: the one reader (restricted) and the one writer.

The format (detectron2 model zoo, MoCo's and the official InsLoc's released weights)::

    {"model": {name: numpy array}, "__author__": str, "matching_heuristics": bool}

or a bare ``{name: numpy array}``. A pickle can run any code it names when it is loaded, so the
reader (:func:`insloc.utils.safe_pickle.restricted_load`) accepts only the few globals numpy arrays
and ordered dicts are rebuilt from; anything else is refused before it is called.
"""

import os
import pickle
from collections import OrderedDict
from typing import Dict, Mapping, Union

import numpy as np
import torch

from ..utils.file_io import atomic_write_bytes
from ..utils.safe_pickle import restricted_load

EXPECTED = "a detectron2 .pkl of numpy arrays ({name: array}, or one under 'model')"


def read_detectron2_pkl(path: str) -> Dict[str, torch.Tensor]:
    """The weights of a detectron2 ``.pkl``, as tensors under the file's own names.

    Args:
        path: a pickle of ``{"model": {name: array}, ...}`` or of ``{name: array}``.
    Returns:
        {name: tensor} in the file's order (numpy arrays and numpy/python numbers -> tensors).
    Raises:
        FileNotFoundError: no such file.
        ValueError: not a pickle, a pickle of anything but arrays and containers, or no weights.
    """
    if not os.path.exists(path):
        raise FileNotFoundError(f"weights file {path!r} does not exist")
    obj = restricted_load(path, EXPECTED)
    weights = obj.get("model", obj) if isinstance(obj, dict) else None
    if not isinstance(weights, dict) or not weights:
        raise ValueError(f"{path}: expected a dict of arrays, or one under 'model'")
    out = OrderedDict()
    for name, value in weights.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = np.asarray(value)
        if not isinstance(value, (np.ndarray, np.generic)) or value.dtype == object:
            raise ValueError(
                f"{path}: entry {name!r} is a {type(value).__name__}, expected a numeric array"
            )
        out[str(name)] = torch.from_numpy(np.array(value))  # a copy: writable, own memory
    return out


def write_detectron2_pkl(
    state_dict: Mapping[str, Union[torch.Tensor, np.ndarray]],
    path: str,
    author: str = "insloc",
    matching_heuristics: bool = True,
) -> None:
    """Write ``{"model": {name: array}, "__author__", "matching_heuristics"}`` atomically.

    Args:
        state_dict: {detectron2 name: tensor or array}; tensors are moved to the CPU.
        path: the output file; an existing file is never overwritten.
        author: "__author__" (detectron2 treats "Caffe2" specially; anything else is a label).
        matching_heuristics: let detectron2 match names by suffix, as MoCo's and InsLoc's files do
            (the names written here are exact, so this only matters for models with other
            prefixes).
    """
    if os.path.exists(path):
        raise FileExistsError(f"{path} already exists; refusing to overwrite it")
    model = OrderedDict(
        (name, v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else np.asarray(v))
        for name, v in state_dict.items()
    )
    payload = {"model": model, "__author__": author, "matching_heuristics": matching_heuristics}
    # protocol 4: arrays in-band (no out-of-band buffers), readable by any Python 3
    atomic_write_bytes(pickle.dumps(payload, protocol=4), path)
