"""Dense heads on trunk features, registered in ``DENSE_HEAD_REGISTRY`` (``DENSE.HEAD``)."""

from .anchornet import AnchorNet
from .build import DENSE_HEAD_REGISTRY, build_dense_head
from .introspection import Introspection, introspection_nll
from .sampling import location_centres, sample_at

__all__ = [
    "AnchorNet",
    "DENSE_HEAD_REGISTRY",
    "Introspection",
    "build_dense_head",
    "introspection_nll",
    "location_centres",
    "sample_at",
]
