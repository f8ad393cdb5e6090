"""Logging set-up: rank 0 logs INFO to stdout and OUTPUT_DIR/log.txt; other ranks log warnings."""

import logging
import os
import sys


def setup_logger(output_dir: str = "", rank: int = 0, name: str = "insloc") -> logging.Logger:
    logger = logging.getLogger(name)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    fmt = logging.Formatter(
        f"[%(asctime)s{'' if rank == 0 else f' rank{rank}'} %(name)s] %(message)s", "%m/%d %H:%M:%S"
    )
    console = logging.StreamHandler(sys.stdout)
    console.setLevel(logging.INFO if rank == 0 else logging.WARNING)
    console.setFormatter(fmt)
    logger.addHandler(console)
    if output_dir:
        os.makedirs(output_dir, exist_ok=True)
        filename = "log.txt" if rank == 0 else f"log.rank{rank}.txt"
        file_handler = logging.FileHandler(os.path.join(output_dir, filename))
        file_handler.setLevel(logging.INFO)
        file_handler.setFormatter(fmt)
        logger.addHandler(file_handler)
    return logger
