"""What every entry script shares: the command line, the config and its task, the rules of its
output folder, the set-up of a run, and the boundary where a bad input becomes one line of error.

A tool keeps only what is its own: its arguments and its body. The scaffold, for a tool that runs
a config::

    parser = default_argument_parser(__doc__, resume=True)       # --config-file, KEY VALUE, ...
    args = parse_args(parser, argv)
    return run_config_tool(args, train, tool="tools/x.py", tasks=("pretraining",), training=True)

loads the config with its overrides, refuses a config of another task, picks the device, and
calls ``train(args, cfg)`` (under :func:`~insloc.engine.launch.launch` for a training tool) inside
:func:`run_tool`. A tool without a config calls ``run_tool(body, args)`` directly.

The output rules (docs/reliability.md states them to users):

- the output folder is checked before any work: a path that is a file, or a folder that cannot be
  created or written, is refused;
- a run refuses a folder that already holds any file it would write (an earlier run's output, or a
  file of the user's), naming it, unless ``--resume`` continues that run;
- the ``--config-file`` is never overwritten, in any mode;
- a training run writes nothing (log.txt and config.yaml included) before its inputs are validated:
  the resume checkpoint, the weights, the training data and the test sets;
- bad input ends a tool with one line on stderr, ``error: ...``, naming the file, key or value,
  and exit status 2; a non-finite loss with status 1; Ctrl-C with one line saying where the run
  stopped and how to resume it, and status 130.
"""

import argparse
import glob
import logging
import os
import shlex
import sys
import tempfile
import traceback

from insloc.config import load_config
from insloc.config.registry import get_method, methods_of_task
from insloc.data.image_io import BadImageError
from insloc.utils import comm
from insloc.utils.env import collect_env_info
from insloc.utils.file_io import atomic_write_text
from insloc.utils.logger import console_log, log_to_file_only, release_log_file, setup_logger

from .checkpoint import resume_candidates
from .launch import launch, resolve_device

EXIT_ERROR = 2
EXIT_DIVERGED = 1
EXIT_INTERRUPTED = 130

# Errors that bad input raises (ConfigError, the data errors and an unknown dataset name are
# ValueErrors; missing, unreadable or unwritable paths OSErrors; an image that a tool cannot do
# without a BadImageError): one line at the boundary. Anything else is a bug: a traceback.
USER_ERRORS = (ValueError, OSError, BadImageError)


class Interrupted(Exception):
    """Ctrl-C during a run; the message says where it stopped and how to resume it."""


def default_argument_parser(
    description: str, *, config: bool = True, resume: bool = True
) -> argparse.ArgumentParser:
    """The command line a tool starts from; it adds its own arguments.

    Args:
        description: the tool's docstring: its first paragraph describes it, the rest (usage
            lines) is the help's epilog.
        config: ``--config-file FILE`` and ``KEY VALUE`` config overrides.
        resume: ``--resume`` (training tools).
    """
    first, _, rest = description.strip().partition("\n\n")
    parser = argparse.ArgumentParser(
        description=" ".join(first.split()),
        epilog=rest.strip() or None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    if config:
        parser.add_argument(
            "--config-file", default="", metavar="FILE", help="path to a yaml recipe"
        )
    if resume:
        parser.add_argument(
            "--resume",
            action="store_true",
            help="continue the run in OUTPUT_DIR from its newest checkpoint",
        )
    if config:
        parser.add_argument(
            "opts",
            nargs="*",
            default=[],
            help="config overrides as KEY VALUE pairs, e.g. SOLVER.MAX_ITER 1000; flags may stand "
            "before or after them",
        )
    return parser


def parse_args(parser: argparse.ArgumentParser, argv=None) -> argparse.Namespace:
    """Parse flags that stand anywhere among the ``KEY VALUE`` overrides.

    The result also holds ``command``: the script and its arguments, to say how to resume.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_intermixed_args(argv)
    args.command = [sys.argv[0] if sys.argv[0].endswith(".py") else parser.prog, *argv]
    return args


# ---------------------------------------------------------------------------- the output folder
def prepare_output_dir(
    path: str, writes, *, resume=None, config_file: str = "", name: str = "OUTPUT_DIR"
) -> str:
    """Check that folder ``path`` can take a run's outputs, before the run does any work (the
    folder itself is created by the run's first write, once its inputs are validated).

    Args:
        path: the folder.
        writes: the names the run writes in it (glob patterns, e.g. ``"model_*.pth"``).
        resume: True: the run continues the one in ``path`` (its outputs may be there); False: a
            tool with ``--resume`` that was not given it; None: a tool without ``--resume``.
        config_file: the recipe given with ``--config-file``, never to be overwritten.
        name: how the user named the folder, for the messages (``OUTPUT_DIR``, ``--output``).
    Returns:
        ``path``.
    Raises:
        NotADirectoryError: ``path``, or the nearest existing folder above it, is a file.
        PermissionError: the folder cannot be written, or created.
        FileExistsError: without ``resume``, the folder holds one of ``writes`` (named).
    """
    if not path:
        raise ValueError(f"{name} is empty: name a folder for the outputs")
    if os.path.exists(path) and not os.path.isdir(path):
        raise NotADirectoryError(f"{name} {path!r} is a file; expected a folder")
    held = _held_outputs(path, writes)
    if not resume and held:
        first = os.path.join(path, held[0])
        more = f" and {len(held) - 1} more of its outputs" if len(held) > 1 else ""
        if config_file and _same_file(first, config_file):
            raise FileExistsError(
                f"{name} {path!r} holds {held[0]}, the --config-file itself: the run would replace "
                f"it by the frozen config; choose another {name}"
            )
        advice = "pass --resume to continue that run, or " if resume is False else ""
        raise FileExistsError(
            f"{name} {path!r} already holds {held[0]}{more}, which this run would overwrite; "
            f"{advice}choose another {name} (nothing was written)"
        )
    _check_writable(path, name)
    return path


def prepare_output_file(path: str, name: str = "--output") -> str:
    """:func:`prepare_output_dir` for a tool that writes one file: it must not exist yet."""
    if os.path.isdir(path):
        raise IsADirectoryError(f"{name} {path!r} is a folder; expected a file name")
    if os.path.lexists(path):
        raise FileExistsError(
            f"{name} {path!r} already exists; choose another {name} (nothing was written)"
        )
    _check_writable(os.path.dirname(os.path.abspath(path)), f"the folder of {name}")
    return path


def _held_outputs(path: str, writes) -> list:
    """The names in folder ``path`` that match ``writes``, sorted."""
    if not os.path.isdir(path):
        return []
    found = set()
    for pattern in writes:
        found.update(
            os.path.basename(p) for p in glob.glob(os.path.join(glob.escape(path), pattern))
        )
    return sorted(found)


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _check_writable(path: str, name: str) -> None:
    """A file can be created in folder ``path``, or ``path`` can be created (nothing is left)."""
    if os.path.isdir(path):
        try:
            with tempfile.TemporaryFile(dir=path):
                pass
        except OSError as e:
            raise PermissionError(
                f"{name} {path!r} cannot be written ({e.strerror or e})"
            ) from None
        return
    parent = os.path.abspath(path)
    while not os.path.exists(parent):  # the nearest existing path above
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise NotADirectoryError(f"{name} {path!r} cannot be created: {parent!r} is a file")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise PermissionError(f"{name} {path!r} cannot be created: {parent!r} is not writable")


def check_task(cfg, config_file: str, tool: str, tasks) -> None:
    """Refuse a config of another task (a detection recipe given to the dense trainer ...).

    Args:
        tasks: the tasks ``tool`` runs (:data:`insloc.config.registry.TASKS`).
    Raises:
        ValueError: MODEL.META_ARCHITECTURE is not registered, or belongs to another task.
    """
    arch = cfg.MODEL.META_ARCHITECTURE
    task = get_method(arch).task
    if task not in tasks:
        archs = ", ".join(repr(a) for a in methods_of_task(*tasks))
        raise ValueError(
            f"{config_file or 'the config'} is a {task} config (MODEL.META_ARCHITECTURE {arch!r}); "
            f"{tool} runs {' or '.join(tasks)} configs (MODEL.META_ARCHITECTURE {archs})"
        )


def setup_config(args, tool: str, tasks, default_opts=()):
    """The config of a tool's command line: ``--config-file`` (or ``default_opts`` without one),
    then the ``KEY VALUE`` overrides; its task checked (:func:`check_task`) and its device
    resolved. Returns the frozen config."""
    opts = list(args.opts) if args.config_file else [*default_opts, *args.opts]
    cfg = load_config(args.config_file, opts)
    check_task(cfg, args.config_file, tool, tasks)
    resolve_device(cfg.MODEL.DEVICE)
    return cfg


def run_config_tool(
    args, body, *, tool: str, tasks, default_opts=(), training: bool = False
) -> int:
    """The whole ``main`` of a tool that runs a config, at the tool boundary (:func:`run_tool`).

    Args:
        args: from :func:`parse_args` of a :func:`default_argument_parser`.
        body: ``body(args, cfg) -> exit status``, what the tool does.
        tool: the script, for messages ("tools/train_net.py").
        tasks: the tasks it runs.
        default_opts: overrides that stand for a recipe when no ``--config-file`` is given.
        training: run ``body`` under :func:`~insloc.engine.launch.launch` (one process, or each
            process of torchrun), which sets up its own logging (:func:`run_training`); otherwise
            the library's log lines (what weights were read, ...) go to the console.
    """

    def main() -> int:
        cfg = setup_config(args, tool, tasks, default_opts)
        if training:
            return launch(body, args, cfg, device=cfg.MODEL.DEVICE)
        with console_log():
            return body(args, cfg)

    return run_tool(main)


def log_outputs(rows, logger=None) -> None:
    """Log where a run's outputs are: one ``name  path`` row each."""
    logger = logger or logging.getLogger("insloc")
    logger.info("outputs:\n" + "\n".join(f"  {k:<12} {v}" for k, v in rows))


# ---------------------------------------------------------------------------- a training run
def default_setup(cfg, args, writes=None):
    """Check OUTPUT_DIR (:func:`prepare_output_dir`), set up logging and log the run header.

    The lines meant for log.txt are held in memory until :func:`save_run_files`: a run refused
    while it validates its inputs writes nothing.

    Args:
        writes: what the run writes in OUTPUT_DIR (default: a trainer's outputs).
    """
    from .trainer import Trainer

    output_dir = cfg.OUTPUT_DIR
    prepare_output_dir(
        output_dir,
        Trainer.outputs if writes is None else writes,
        resume=bool(args.resume),
        config_file=args.config_file,
    )
    rank = comm.get_rank()
    logger = setup_logger(output_dir, rank, hold=True)
    logger.info("command line: " + shlex.join(sys.argv))
    logger.info("environment:\n" + collect_env_info(comm.get_world_size()))
    logger.info("full config:\n" + cfg.dump())
    return logger


def save_run_files(cfg, args) -> None:
    """Write the held log and OUTPUT_DIR/config.yaml (the frozen config), unless config.yaml is the
    ``--config-file`` itself (a resume with the run's own config), which is left as it is."""
    os.makedirs(cfg.OUTPUT_DIR, exist_ok=True)
    release_log_file(rank=comm.get_rank())
    if not comm.is_main_process():
        return
    path = os.path.join(cfg.OUTPUT_DIR, "config.yaml")
    if args.config_file and _same_file(path, args.config_file):
        logging.getLogger("insloc").info(f"{path} is the --config-file: left as it is")
        return
    atomic_write_text(cfg.dump(), path)


def run_training(trainer_cls, cfg, args, notes=()):
    """The body of a training tool, in the order that keeps a refused run from writing: check
    OUTPUT_DIR, build the trainer (which validates the resume checkpoint, the weights, the data and
    the test sets), write log.txt and config.yaml, train.

    Args:
        trainer_cls: a :class:`~insloc.engine.trainer.Trainer`; its ``outputs`` are the files the
            run writes in OUTPUT_DIR.
        notes: lines to log after the header.
    Returns:
        the trainer, after training (its ``history`` holds the evaluations).
    Raises:
        Interrupted: Ctrl-C; the message says where the run stopped and how to resume it.
    """
    trainer = None
    try:
        logger = default_setup(cfg, args, trainer_cls.outputs)
        for note in notes:
            logger.info(note)
        trainer = trainer_cls(cfg, resume=args.resume)
        save_run_files(cfg, args)
        trainer.train()
    except KeyboardInterrupt:
        raise Interrupted(_interrupted_line(trainer, cfg, args)) from None
    return trainer


def _interrupted_line(trainer, cfg, args) -> str:
    if trainer is None:
        return "interrupted before training started; nothing to resume"
    # what --resume would pick (the marker may lag a checkpoint just written)
    ckpt = next(iter(resume_candidates(cfg.OUTPUT_DIR)), None)
    command = list(args.command)
    if "--resume" not in command:
        command.insert(1, "--resume")
    launcher = "torchrun [the same options]" if comm.get_world_size() > 1 else "python"
    return (
        f"interrupted at iteration {trainer.iter} of {trainer.max_iter}; last checkpoint: "
        f"{ckpt or 'none yet'}; resume with: {launcher} {shlex.join(command)}"
    )


# ---------------------------------------------------------------------------- the tool boundary
def run_tool(main_func, *args, **kwargs) -> int:
    """Call ``main_func(*args, **kwargs)``, the body of a tool, and return its exit status.

    Bad input (:data:`USER_ERRORS`) becomes one line ``error: ...`` on stderr and status 2; a
    non-finite loss (FloatingPointError) status 1; Ctrl-C one line and status 130. The line also
    goes to the run's log.txt when it has one, with the traceback for whoever debugs it.
    """
    try:
        return main_func(*args, **kwargs)
    except Interrupted as e:
        return _stop(str(e), EXIT_INTERRUPTED)
    except KeyboardInterrupt:
        return _stop("interrupted", EXIT_INTERRUPTED)
    except FloatingPointError as e:
        return _stop(f"error: {one_line(e)}", EXIT_DIVERGED)
    except USER_ERRORS as e:
        return _stop(f"error: {one_line(e)}", EXIT_ERROR, traceback.format_exc())


def _stop(line: str, status: int, trace: str = "") -> int:
    print(line, file=sys.stderr, flush=True)
    log_to_file_only(line + (f"\n{trace}" if trace else ""))
    return status


def one_line(e: BaseException) -> str:
    """The message of ``e`` on one line (a DataLoader worker's error: the original message)."""
    text = str(e)
    if "Original Traceback" in text:  # re-raised by the DataLoader from a worker
        last = [line for line in text.splitlines() if line.strip()][-1]
        exc_type, sep, message = last.partition(": ")
        text = message if sep and exc_type.replace(".", "").isidentifier() else last
    return " ".join(text.split()) or type(e).__name__
