"""insloc: self-supervised pretraining for object detection, and its transfer.

Importing the package registers insloc's methods and backbones (``insloc.modeling`` holds them)
and its detection dataset names (``insloc.data.detection``; see :mod:`insloc.config.registry`),
so that a config naming them loads, validates and builds from any entry point.
"""

from . import modeling  # noqa: F401  (registers the methods and backbones)
from .data import detection  # noqa: F401  (registers the dataset names and their check)
from .version import __version__

__all__ = ["__version__"]
