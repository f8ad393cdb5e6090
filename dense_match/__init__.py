"""Geometry-sensitive dense features and keypoint matching (a later stage of insloc)."""
