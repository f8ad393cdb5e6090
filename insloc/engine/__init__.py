from .checkpoint import last_checkpoint
from .launch import launch, resolve_device

__all__ = ["last_checkpoint", "launch", "resolve_device"]
