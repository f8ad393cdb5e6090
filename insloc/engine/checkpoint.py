"""A run's checkpoint files: their names, the ``last_checkpoint`` marker, and which one a
``--resume`` picks. They are written atomically (:mod:`insloc.utils.file_io`) and read like every
weight file (:mod:`insloc.transfer.weight_file`).

A pretraining checkpoint is a dict of tensors and plain Python values (loadable with
``weights_only=True``)::

    {"model": state_dict (encoder_q.*, encoder_k.*, queue_*, queue_ptr),
     "optimizer": ..., "scheduler": ..., "iteration": int (iterations done),
     "rng": {"torch": ByteTensor, "numpy": ..., "python": ...}, "config": yaml str,
     "meta_arch": str, "insloc_version": str}
"""

import os

LAST_CHECKPOINT = "last_checkpoint"


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
