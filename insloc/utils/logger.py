"""Logging set-up: rank 0 logs INFO to stdout and OUTPUT_DIR/log.txt; other ranks log warnings.

A tool that must not write before its inputs are validated sets the logger up with ``hold=True``:
the lines meant for log.txt wait in memory until :func:`release_log_file` writes them (and opens
the file for the rest of the run), or are dropped with the process when the run is refused.
"""

import logging
import os
import sys
from contextlib import contextmanager
from logging.handlers import MemoryHandler

_HELD_CAPACITY = 100_000  # lines a held log keeps before it is written (set-up logs a few hundred)


def setup_logger(
    output_dir: str = "", rank: int = 0, name: str = "insloc", hold: bool = False
) -> logging.Logger:
    """The ``name`` logger with a console handler and, with ``output_dir``, log.txt.

    Args:
        output_dir: the run's folder ("" = console only).
        rank: this process; rank 0 logs INFO to the console and log.txt, others log.rank<r>.txt.
        hold: keep the file's lines in memory until :func:`release_log_file` (nothing is written).
    """
    logger = logging.getLogger(name)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    fmt = _formatter(rank)
    console = logging.StreamHandler(sys.stdout)
    console.setLevel(logging.INFO if rank == 0 else logging.WARNING)
    console.setFormatter(fmt)
    logger.addHandler(console)
    if output_dir and hold:
        held = MemoryHandler(_HELD_CAPACITY, flushLevel=logging.CRITICAL + 1)
        held.log_file = _log_path(output_dir, rank)
        held.setLevel(logging.INFO)
        logger.addHandler(held)
    elif output_dir:
        os.makedirs(output_dir, exist_ok=True)
        logger.addHandler(_file_handler(_log_path(output_dir, rank), fmt))
    return logger


@contextmanager
def console_log(name: str = "insloc"):
    """While the block runs, the INFO lines of ``name`` go to stdout as plain messages (a tool that
    is not a training run: what the library reports, e.g. which weights it read). A logger set up
    already (:func:`setup_logger`) is left as it is; the set-up is undone afterwards."""
    logger = logging.getLogger(name)
    if logger.handlers:
        yield logger
        return
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s"))
    level, propagate = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        yield logger
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate


def release_log_file(name: str = "insloc", rank: int = 0) -> None:
    """Write the lines a held logger kept to its log file, and log there from now on."""
    logger = logging.getLogger(name)
    for handler in list(logger.handlers):
        if isinstance(handler, MemoryHandler) and hasattr(handler, "log_file"):
            os.makedirs(os.path.dirname(handler.log_file) or ".", exist_ok=True)
            target = _file_handler(handler.log_file, _formatter(rank))
            handler.setTarget(target)
            handler.flush()
            logger.removeHandler(handler)
            handler.close()
            logger.addHandler(target)


def log_to_file_only(message: str, name: str = "insloc", level: int = logging.ERROR) -> None:
    """Write ``message`` to the log file of ``name`` (not the console), when it has one."""
    logger = logging.getLogger(name)
    record = logger.makeRecord(name, level, __file__, 0, message, None, None)
    for handler in logger.handlers:
        if isinstance(handler, logging.FileHandler) and record.levelno >= handler.level:
            handler.handle(record)


def _log_path(output_dir: str, rank: int) -> str:
    return os.path.join(output_dir, "log.txt" if rank == 0 else f"log.rank{rank}.txt")


def _formatter(rank: int) -> logging.Formatter:
    return logging.Formatter(
        f"[%(asctime)s{'' if rank == 0 else f' rank{rank}'} %(name)s] %(message)s", "%m/%d %H:%M:%S"
    )


def _file_handler(path: str, fmt: logging.Formatter) -> logging.FileHandler:
    handler = logging.FileHandler(path)
    handler.setLevel(logging.INFO)
    handler.setFormatter(fmt)
    return handler
