"""What every config validator shares: the error type and reading a key by its dotted name."""

from fvcore.common.config import CfgNode


class ConfigError(ValueError):
    """A bad config file, key or value; the message names it and says what was expected."""


def get_key(cfg: CfgNode, key: str):
    """The value of ``key`` ("SOLVER.BASE_LR") in ``cfg``."""
    node = cfg
    for part in key.split("."):
        node = node[part]
    return node
