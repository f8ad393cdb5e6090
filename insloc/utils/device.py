"""Moving nested batches between devices."""

import torch

__all__ = ["to_device"]


def to_device(batch, device: torch.device):
    """Move every tensor of a (nested) dict / list / tuple to ``device``; other values stay."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(v, device) for v in batch)
    return batch
