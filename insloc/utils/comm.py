"""Collectives for multi-process training; every function is a no-op (or identity) in one process.

Model and engine code call these instead of ``torch.distributed`` so that the same code runs in one
CPU process, on one GPU, and under torchrun on many GPUs and nodes.
"""

import torch
import torch.distributed as dist


def is_dist() -> bool:
    return dist.is_available() and dist.is_initialized()


def get_world_size() -> int:
    return dist.get_world_size() if is_dist() else 1


def get_rank() -> int:
    return dist.get_rank() if is_dist() else 0


def is_main_process() -> bool:
    return get_rank() == 0


def synchronize() -> None:
    """Barrier across all processes."""
    if is_dist() and get_world_size() > 1:
        dist.barrier()


@torch.no_grad()
def all_gather_tensor(tensor: torch.Tensor) -> torch.Tensor:
    """Concatenate ``tensor`` (same shape on every rank) along dim 0 in rank order. No gradient."""
    if get_world_size() == 1:
        return tensor
    parts = [torch.empty_like(tensor) for _ in range(get_world_size())]
    dist.all_gather(parts, tensor.contiguous())
    return torch.cat(parts, dim=0)


def broadcast_tensor(tensor: torch.Tensor, src: int = 0) -> torch.Tensor:
    """Overwrite ``tensor`` in place with rank ``src``'s values; returns it."""
    if get_world_size() > 1:
        dist.broadcast(tensor, src=src)
    return tensor


def all_reduce_mean(values: dict) -> dict:
    """Average a dict of floats or scalar tensors over processes; returns floats."""
    if not values:
        return {}
    keys = sorted(values)
    stacked = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64)
    if get_world_size() > 1:
        device = "cuda" if dist.get_backend() == "nccl" else "cpu"
        stacked = stacked.to(device)
        dist.all_reduce(stacked)
        stacked = stacked.cpu() / get_world_size()
    return {k: v.item() for k, v in zip(keys, stacked)}


def all_reduce_sum(values: dict) -> dict:
    """Sum a dict of numbers over processes; returns floats."""
    if get_world_size() == 1:
        return {k: float(v) for k, v in values.items()}
    means = all_reduce_mean(values)
    return {k: v * get_world_size() for k, v in means.items()}


def all_gather_object(obj) -> list:
    """Every process's picklable ``obj``, in rank order (``[obj]`` in one process)."""
    if get_world_size() == 1:
        return [obj]
    gathered = [None] * get_world_size()
    dist.all_gather_object(gathered, obj)
    return gathered
