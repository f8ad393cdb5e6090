from .instance_discrimination import build_heldout_batch, instance_discrimination_accuracy

__all__ = ["build_heldout_batch", "instance_discrimination_accuracy"]
