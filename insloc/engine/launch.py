"""Start one process or join a torchrun job, run ``main_func``, and tear down the process group.

Under ``torchrun`` the environment holds RANK, WORLD_SIZE and LOCAL_RANK (and MASTER_ADDR/PORT);
without it the job is one process. NCCL is used when the process drives a GPU, gloo on CPU.
"""

import logging
import os

import torch
import torch.distributed as dist

logger = logging.getLogger(__name__)


def get_local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", 0))


def resolve_device(name: str) -> torch.device:
    """Turn MODEL.DEVICE ("auto", "cpu", "cuda") into this process's device."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError(f"MODEL.DEVICE = {name!r} but no CUDA device is available; use 'cpu'")
        return torch.device("cuda", get_local_rank())
    if name != "cpu":
        raise ValueError(f"MODEL.DEVICE = {name!r}: expected 'auto', 'cpu' or 'cuda'")
    return torch.device("cpu")


def launch(main_func, *args, device: str = "auto", timeout_minutes: int = 30):
    """Run ``main_func(*args)`` in this process, inside a process group when under torchrun.

    Args:
        main_func: the job; it finds rank and world size through ``insloc.utils.comm``.
        device: MODEL.DEVICE, which picks the backend (NCCL for CUDA, gloo for CPU).
    """
    world_size = int(os.environ.get("WORLD_SIZE", 1))
    if world_size > 1:
        dev = resolve_device(device)
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        from datetime import timedelta

        dist.init_process_group(
            backend="nccl" if dev.type == "cuda" else "gloo",
            init_method="env://",
            timeout=timedelta(minutes=timeout_minutes),
        )
    try:
        return main_func(*args)
    finally:
        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
