"""``build_model``: the model of ``MODEL.META_ARCHITECTURE``, looked up in the method registry.

Contract of a registered method's model (:func:`insloc.config.registry.register_method`): a class
with ``from_config(cfg)``; ``model(batch) -> dict`` whose "loss*" entries are scalar losses to sum
and whose other entries are detached metrics. Pretraining methods also give
``model.encode(images_uint8, boxes=None) -> {level: N x dim}``, L2-normalised query embeddings
for the held-out evaluation.
"""

from torch import nn

from ..config.registry import get_method


def build_model(cfg) -> nn.Module:
    """The model of ``cfg``, on the CPU (the engine moves it)."""
    method = get_method(cfg.MODEL.META_ARCHITECTURE)
    if method.model is None:
        raise ValueError(
            f"MODEL.META_ARCHITECTURE {method.name!r} registered no model class: build it with the "
            f"tool of its task ({method.task})"
        )
    return method.model.from_config(cfg)
