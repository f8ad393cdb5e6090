"""Atomic file writes: a run killed at any moment leaves the old file or the complete new one.

Every file insloc writes that a later run or tool reads (checkpoints, ``last_checkpoint``,
``config.yaml``, ``metrics.jsonl`` trimmed on resume, results, converted weights) goes through here.
"""

import os
import tempfile
from contextlib import contextmanager

import torch

__all__ = ["atomic_save", "atomic_write_bytes", "atomic_write_text"]


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
