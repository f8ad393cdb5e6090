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


def check_tables(cfg, fail, choices=None, positive=(), non_negative=(), probabilities=()) -> None:
    """Call ``fail(key, expected)`` for the first key outside its table's rule.

    Args:
        choices: {key: allowed values}; positive: keys > 0; non_negative: keys >= 0;
        probabilities: keys in [0, 1].
    """
    for key, allowed in (choices or {}).items():
        if get_key(cfg, key) not in allowed:
            fail(key, "one of " + ", ".join(repr(c) for c in allowed))
    for key in positive:
        if not get_key(cfg, key) > 0:
            fail(key, "a value > 0")
    for key in non_negative:
        if not get_key(cfg, key) >= 0:
            fail(key, "a value >= 0")
    for key in probabilities:
        if not 0.0 <= get_key(cfg, key) <= 1.0:
            fail(key, "a value in [0, 1]")
