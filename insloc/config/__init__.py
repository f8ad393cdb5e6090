"""The config tree: ``get_cfg()`` gives the defaults, ``load_config`` a recipe with overrides."""

from .config import ConfigError, get_cfg, load_config, validate_config

__all__ = ["ConfigError", "get_cfg", "load_config", "validate_config"]
