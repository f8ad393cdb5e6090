from .checkpoint import atomic_save, last_checkpoint, load_checkpoint
from .launch import launch, resolve_device

__all__ = ["atomic_save", "last_checkpoint", "launch", "load_checkpoint", "resolve_device"]
