"""Checkpoint files: atomic writes, safe loads, and finding the newest checkpoint of a run.

A pretraining checkpoint is a dict of tensors and plain Python values (loadable with
``weights_only=True``)::

    {"model": state_dict (encoder_q.*, encoder_k.*, queue_*, queue_ptr),
     "optimizer": ..., "scheduler": ..., "iteration": int (iterations done),
     "rng": {"torch": ByteTensor, "numpy": ..., "python": ...}, "config": yaml str,
     "meta_arch": str, "insloc_version": str}
"""

import os
import tempfile
from contextlib import contextmanager

import torch

LAST_CHECKPOINT = "last_checkpoint"


@contextmanager
def _atomic_file(path: str):
    """A binary file object whose content replaces ``path`` only once it is complete.

    Written to a temporary file in the same folder, fsynced, then renamed over ``path``: a run
    killed at any moment leaves either the old file or the complete new one, never a partial.
    """
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp_", suffix=os.path.basename(path))
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    _fsync_dir(folder)


def atomic_save(obj, path: str) -> None:
    """``torch.save`` to ``path`` atomically (see :func:`_atomic_file`)."""
    with _atomic_file(path) as f:
        torch.save(obj, f)


def atomic_write_text(text: str, path: str) -> None:
    """Write a small text file atomically."""
    atomic_write_bytes(text.encode(), path)


def atomic_write_bytes(data: bytes, path: str) -> None:
    """Write ``data`` atomically, e.g. a detectron2 pickle."""
    with _atomic_file(path) as f:
        f.write(data)


def _fsync_dir(folder: str) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def load_checkpoint(path: str) -> dict:
    """Load a checkpoint without executing code from it (``weights_only=True``)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint {path!r} does not exist")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a corrupt file or one holding arbitrary objects
        raise ValueError(f"checkpoint {path!r} cannot be loaded safely: {e}") from None


def checkpoint_name(iteration: int) -> str:
    return f"model_{iteration:07d}.pth"


def last_checkpoint(output_dir: str):
    """Path of the newest checkpoint named in ``output_dir/last_checkpoint``, or None."""
    marker = os.path.join(output_dir, LAST_CHECKPOINT)
    if not os.path.isfile(marker):
        return None
    with open(marker) as f:
        name = f.read().strip()
    path = os.path.join(output_dir, name)
    return path if os.path.isfile(path) else None


def existing_checkpoints(output_dir: str) -> list:
    """Checkpoint files of a run already in ``output_dir`` (sorted)."""
    if not os.path.isdir(output_dir):
        return []
    names = os.listdir(output_dir)
    return sorted(n for n in names if n.endswith(".pth") and n.startswith("model_"))
