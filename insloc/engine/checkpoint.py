"""Checkpoint files: atomic writes, safe loads, and finding the newest checkpoint of a run.

A pretraining checkpoint is a dict of tensors and plain Python values (loadable with
``weights_only=True``)::

    {"model": state_dict (encoder_q.*, encoder_k.*, queue_*, queue_ptr),
     "optimizer": ..., "scheduler": ..., "iteration": int (iterations done),
     "rng": {"torch": ByteTensor, "numpy": ..., "python": ...}, "config": yaml str,
     "meta_arch": str, "insloc_version": str}
"""

import os
import re
import tempfile
import warnings
from contextlib import contextmanager

import torch

from insloc.config.config import task_of

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
    """Load a checkpoint without executing code from it (``weights_only=True``).

    Raises:
        FileNotFoundError: no such file.
        ValueError: a folder, an empty, text, truncated or non-PyTorch file, or a pickle naming
            Python objects a weights-only load refuses; the message says which, once.
    """
    if os.path.isdir(path):
        raise ValueError(f"{path!r} is a folder; expected a checkpoint file (.pth)")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint {path!r} does not exist")
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols it may not support
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a corrupt file or one holding arbitrary objects
        raise ValueError(f"{path!r} {_why_unreadable(path, e)}") from None


def _why_unreadable(path: str, error: Exception) -> str:
    """What the file is, for a checkpoint torch.load refused: never PyTorch's advice to load it
    with ``weights_only=False``, which would run any code the file names."""
    with open(path, "rb") as f:
        head = f.read(64)
    expected = "expected a PyTorch checkpoint (torch.save of tensors and plain values)"
    if not head:
        return f"is empty (0 bytes); {expected}"
    refused = re.search(r"GLOBAL ([\w.]+)", str(error))
    if refused:
        return (
            f"holds a Python object ({refused.group(1)}) that a weights-only load refuses, since "
            f"loading it could run code; {expected}"
        )
    if head.startswith(b"PK"):
        return f"is a damaged or truncated PyTorch checkpoint ({_first_line(error)})"
    if head.startswith(b"\x80"):
        return f"is a Python pickle that is not a PyTorch checkpoint; {expected}"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return f"is not a PyTorch checkpoint (unknown binary content); {expected}"
    return f"is a text file (it starts with {text.split(chr(10))[0][:40]!r}); {expected}"


def _first_line(error: Exception) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def checkpoint_task(ckpt) -> str:
    """The task a loaded checkpoint was trained for: "pretraining", "pretext", "detection",
    "dense matching" (the values of ``insloc.config.config.TASKS``), "state dict" (a bare dict of
    tensors: torchvision's or detectron2's files) or "unknown".

    Read from the ``meta_arch`` every insloc checkpoint records, else from the weights' names
    (detectors, dense models and pretraining encoders have names of their own).
    """
    if not isinstance(ckpt, dict):
        return "unknown"
    state = ckpt.get("model")
    if not isinstance(state, dict):
        tensors = ckpt and all(isinstance(v, torch.Tensor) for v in ckpt.values())
        return "state dict" if tensors else "unknown"
    if isinstance(ckpt.get("meta_arch"), str):
        return task_of(ckpt["meta_arch"])
    names = list(state)
    if any(k.startswith(("rpn.", "roi_heads.", "proposal_generator.")) for k in names):
        return "detection"
    if any(k.startswith("features.trunk.") for k in names):
        return "dense matching"
    if any(k.startswith("encoder_q.") for k in names):
        return "pretraining"
    return "unknown"


def checkpoint_kind(ckpt) -> str:
    """What a loaded checkpoint is, in words, for messages: "a detection (fine-tuning)
    checkpoint", "a dense matching checkpoint", "a RotNet pretext checkpoint", "an InsLoc
    pretraining checkpoint", "a torchvision ResNet state dict", ..."""
    task = checkpoint_task(ckpt)
    arch = ckpt.get("meta_arch") if isinstance(ckpt, dict) else None
    if task == "detection":
        return "a detection (fine-tuning) checkpoint"
    if task == "dense matching":
        return "a dense matching checkpoint (tools/train_dense.py)"
    if task in ("pretraining", "pretext"):
        if not isinstance(arch, str):
            return f"a {task} checkpoint"
        return f"{'an' if arch[0] in 'AEIOU' else 'a'} {arch} {task} checkpoint"
    if task == "state dict":
        resnet = any(k.startswith(("conv1.", "layer1.")) for k in ckpt)
        return "a torchvision ResNet state dict" if resnet else "a state dict of tensors"
    if isinstance(ckpt, dict) and not isinstance(ckpt.get("model"), dict):
        return "a dict that is neither a checkpoint (no 'model' state dict) nor a state dict"
    return "a checkpoint of unknown kind"


def check_checkpoint_task(ckpt, path: str, tasks, expected: str) -> None:
    """Refuse a checkpoint of another task, naming what it really is.

    Args:
        tasks: the accepted values of :func:`checkpoint_task`.
        expected: what the reader takes, in words, for the message.
    Raises:
        ValueError: "<path> is a dense matching checkpoint ...; expected <expected>".
    """
    if checkpoint_task(ckpt) not in tasks:
        raise ValueError(f"{path} is {checkpoint_kind(ckpt)}; expected {expected}")


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


def resume_candidates(output_dir: str) -> list:
    """The checkpoints of ``output_dir`` to resume from, in order of preference: the one named
    in ``last_checkpoint``, then ``model_final.pth``, then ``model_<iteration>.pth`` from the
    newest (a folder copied without its marker, or with a stale one, still resumes)."""
    found = existing_checkpoints(output_dir)
    final = [n for n in found if n == "model_final.pth"]
    numbered = sorted((n for n in found if n[len("model_") : -len(".pth")].isdigit()), reverse=True)
    paths = [os.path.join(output_dir, n) for n in final + numbered]
    marked = last_checkpoint(output_dir)
    if marked is not None:
        paths = [marked] + [p for p in paths if os.path.basename(p) != os.path.basename(marked)]
    return paths
