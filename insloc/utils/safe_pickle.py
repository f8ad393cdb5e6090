"""The one restricted unpickler, and the one way to say why a file of weights or arrays is refused.

A pickle can run any code it names when it is loaded. Every pickle insloc reads (detectron2's
``.pkl`` weights, CIFAR-10's python batches) goes through :func:`restricted_load`, which resolves
only the globals that numpy arrays, dtypes, numpy scalars and ordered dicts are rebuilt from;
anything else is refused before it is called. ``torch.load(weights_only=True)`` applies the same
rule to PyTorch files, and its refusals are reported with the same words (:func:`unsafe_error`).
"""

import _codecs
import os
import pickle
import re
from collections import OrderedDict
from typing import Dict

import numpy as np

__all__ = [
    "UnsafeFileError",
    "refused_global",
    "restricted_load",
    "unreadable_error",
    "unsafe_error",
]


class UnsafeFileError(ValueError):
    """A file that names a Python object a weights-only load refuses (loading it could run code)."""


def unsafe_error(path: str, name: str) -> UnsafeFileError:
    """The error for a file naming ``name`` (a module.attribute), whichever reader met it."""
    return UnsafeFileError(
        f"{path}: refusing to load {name}: a Python object other than tensors, numpy arrays and "
        "plain containers, which a weights-only load refuses, since loading it could run code"
    )


def unreadable_error(path: str, error: Exception, expected: str) -> ValueError:
    """The error for a file no reader could make sense of: what the file is, by its first bytes.

    Args:
        error: what the reader raised (its first line is kept for a damaged PyTorch file).
        expected: what the reader takes, in words.
    """
    return ValueError(
        f"{path}: not a readable file: it {_what_it_is(path, error)}; expected {expected}"
    )


def _what_it_is(path: str, error: Exception) -> str:
    if os.path.isdir(path):
        return "is a folder"
    with open(path, "rb") as f:
        head = f.read(64)
    if not head:
        return "is empty (0 bytes)"
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    first = lines[0] if lines else type(error).__name__
    if head.startswith(b"PK"):
        return f"is a damaged or truncated PyTorch checkpoint ({first})"
    if head.startswith(b"\x80"):
        return f"is a Python pickle that is not a PyTorch checkpoint or is damaged ({first})"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return "has unknown binary content"
    return f"is a text file (it starts with {text.split(chr(10))[0][:40]!r})"


def refused_global(error: Exception):
    """The ``module.name`` a ``torch.load(weights_only=True)`` error says it refused, or None."""
    found = re.search(r"GLOBAL ([\w.]+)", str(error))
    return found.group(1) if found else None


def _numpy_globals() -> Dict[tuple, object]:
    """The globals a pickled ndarray, dtype or numpy scalar names, under numpy 1 and 2 paths."""
    # numpy 2 moved numpy.core to numpy._core; pickles written by either name the module they had.
    core = np._core if hasattr(np, "_core") else np.core
    allowed = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("collections", "OrderedDict"): OrderedDict,
        # protocol 2 pickles (Python 2 era files: CIFAR-10, detectron2's model zoo) store bytes so
        ("_codecs", "encode"): _codecs.encode,
    }
    for package in ("numpy.core", "numpy._core"):
        allowed[(package + ".multiarray", "_reconstruct")] = core.multiarray._reconstruct
        allowed[(package + ".multiarray", "scalar")] = core.multiarray.scalar
        allowed[(package + ".numeric", "_frombuffer")] = core.numeric._frombuffer
    return allowed


class _RestrictedUnpickler(pickle.Unpickler):
    """Resolves only numpy's array/dtype/scalar constructors and OrderedDict."""

    def __init__(self, file, path: str):
        # latin1: what numpy and detectron2 read Python 2 pickles with (their str held raw bytes)
        super().__init__(file, encoding="latin1")
        self._path = path
        self._allowed = _numpy_globals()

    def find_class(self, module: str, name: str):
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise unsafe_error(self._path, f"{module}.{name}") from None

    def persistent_load(self, pid):
        raise unsafe_error(self._path, f"a persistent id {pid!r}")


def restricted_load(path: str, expected: str = "a pickle of numpy arrays and plain containers"):
    """Unpickle ``path`` accepting numpy arrays, dtypes, scalars and plain containers only.

    Raises:
        FileNotFoundError: no such file.
        UnsafeFileError: the pickle names any other Python object (nothing of it is run).
        ValueError: not a readable pickle (:func:`unreadable_error`, with ``expected``).
    """
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path!r} does not exist")
    if os.path.isdir(path):
        raise unreadable_error(path, IsADirectoryError(path), expected)
    with open(path, "rb") as f:
        try:
            return _RestrictedUnpickler(f, path).load()
        except UnsafeFileError:
            raise
        except Exception as e:  # truncated file, not a pickle, a numpy reconstruct error ...
            raise unreadable_error(path, e, expected) from None
