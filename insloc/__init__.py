"""insloc: self-supervised pretraining for object detection, and its transfer."""

__version__ = "0.1.0"
