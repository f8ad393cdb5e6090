"""The config tree: ``get_cfg()`` returns the defaults, ``load_config`` merges a recipe and overrides."""

from .config import ConfigError, get_cfg, load_config, validate_config

__all__ = ["ConfigError", "get_cfg", "load_config", "validate_config"]
