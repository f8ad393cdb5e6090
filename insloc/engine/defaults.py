"""What every entry script shares: the command line, and the set-up of a run's output folder."""

import argparse
import os
import sys

from insloc.utils import comm
from insloc.utils.env import collect_env_info
from insloc.utils.logger import setup_logger

from .checkpoint import atomic_write_text, existing_checkpoints


def default_argument_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=description,
        epilog="Examples:\n"
        "  python tools/pretrain_net.py --config-file configs/pretrain/insloc_R50_FPN_200ep.yaml\n"
        "  torchrun --nproc_per_node 8 tools/pretrain_net.py --config-file F OUTPUT_DIR out\n"
        "  python tools/pretrain_net.py --config-file F --resume OUTPUT_DIR out",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config-file", default="", metavar="FILE", help="path to a yaml recipe")
    parser.add_argument(
        "--resume", action="store_true", help="continue from OUTPUT_DIR/last_checkpoint"
    )
    parser.add_argument(
        "opts",
        nargs="*",
        default=[],
        help="config overrides as KEY VALUE pairs, e.g. SOLVER.MAX_ITER 1000; flags may stand "
        "before or after them",
    )
    return parser


def parse_args(parser: argparse.ArgumentParser, argv=None) -> argparse.Namespace:
    """Parse flags that stand anywhere among the ``KEY VALUE`` overrides."""
    return parser.parse_intermixed_args(argv)


def default_setup(cfg, args):
    """Check and prepare OUTPUT_DIR, set up logging, log the run header and save the config.

    Raises:
        FileExistsError: OUTPUT_DIR already holds checkpoints and ``--resume`` was not given.
    """
    output_dir = cfg.OUTPUT_DIR
    found = existing_checkpoints(output_dir)
    if found and not args.resume:
        raise FileExistsError(
            f"OUTPUT_DIR {output_dir!r} already holds checkpoints ({', '.join(found[:3])}); "
            "pass --resume to continue that run, or choose another OUTPUT_DIR"
        )
    rank = comm.get_rank()
    if rank == 0:
        os.makedirs(output_dir, exist_ok=True)
    comm.synchronize()
    logger = setup_logger(output_dir, rank)
    logger.info("command line: " + " ".join(sys.argv))
    logger.info("environment:\n" + collect_env_info(comm.get_world_size()))
    logger.info("full config:\n" + cfg.dump())
    if rank == 0:
        atomic_write_text(cfg.dump(), os.path.join(output_dir, "config.yaml"))
    return logger
