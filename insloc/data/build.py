"""Build the image source, the pretraining dataset and its data loader from a config; the worker
set-up that every insloc loader (pretraining, detection, dense) shares."""

import os
import select
import threading
import time
from functools import partial

import cv2
import torch
from torch.utils.data import default_collate

from ..config.registry import METHODS, get_method
from ..utils import comm
from ..utils.logger import setup_logger
from .packed_sources import PackedImageSource, packed_layout
from .samplers import PretrainBatchSampler
from .sources import FileImageSource, ImageSource, SyntheticSource

__all__ = [
    "build_image_source",
    "build_pretrain_dataset",
    "build_pretrain_loader",
    "collate_samples",
    "image_source_from_config",
    "worker_options",
]


def build_image_source(spec: str, image_root: str = "", synthetic=None) -> ImageSource:
    """The source named by ``spec``.

    Args:
        spec: ``"synthetic"``, a folder, a COCO ``.json``, a ``.txt`` list of paths, CIFAR-10's
            ``cifar-10-batches-py`` folder, STL-10's ``stl10_binary`` folder or ``*_X.bin`` file.
        image_root: root for the relative paths of a json or list ("" = the file's folder).
        synthetic: dict(num_images, image_size, seed) for ``"synthetic"``.
    Raises:
        FileNotFoundError: ``spec`` does not exist.
        ValueError: it holds no images, or is a file of another kind.
    """
    if spec == "synthetic":
        options = dict(num_images=2048, image_size=256, seed=0)
        options.update(synthetic or {})
        return SyntheticSource(**options)
    if not os.path.exists(spec):
        raise FileNotFoundError(f"image source {spec!r} does not exist")
    if packed_layout(spec):
        return PackedImageSource(spec)
    if os.path.isdir(spec):
        return FileImageSource.from_folder(spec)
    ext = os.path.splitext(spec)[1].lower()
    if ext == ".json":
        return FileImageSource.from_coco_json(spec, image_root)
    if ext == ".txt":
        return FileImageSource.from_list(spec, image_root)
    raise ValueError(
        f"image source {spec!r}: expected a folder, a COCO .json, a .txt list of paths, "
        f"CIFAR-10's cifar-10-batches-py folder, an STL-10 *_X.bin file or 'synthetic'"
    )


def image_source_from_config(cfg) -> ImageSource:
    """The source of DATASETS.PRETRAIN, DATASETS.IMAGE_ROOT and DATASETS.SYNTHETIC.*."""
    syn = cfg.DATASETS.SYNTHETIC
    return build_image_source(
        cfg.DATASETS.PRETRAIN,
        image_root=cfg.DATASETS.IMAGE_ROOT,
        synthetic=dict(num_images=syn.NUM_IMAGES, image_size=syn.IMAGE_SIZE, seed=syn.SEED),
    )


def build_pretrain_dataset(cfg, source: ImageSource = None):
    """The data pipeline MODEL.META_ARCHITECTURE registered (:mod:`insloc.config.registry`):
    InsLoc composites, MoCo two-crop views, or the samples of a classic pretext task (rotations,
    jigsaw tiles, patch pairs, exemplar copies).

    Args:
        cfg: the config.
        source: the images; None builds DATASETS.PRETRAIN's.
    """
    method = get_method(cfg.MODEL.META_ARCHITECTURE)
    if method.dataset is None:
        with_data = ", ".join(repr(n) for n, m in METHODS.items() if m.dataset is not None)
        raise ValueError(
            f"MODEL.META_ARCHITECTURE = {method.name!r} ({method.task}) has no pretraining data "
            f"pipeline; expected one of {with_data}"
        )
    if source is None:
        source = image_source_from_config(cfg)
    return method.dataset.from_config(cfg, source)


def _worker_init(worker_id: int, output_dir: str = "", rank: int = 0, trainer_pid: int = 0) -> None:
    # Workers already run in parallel; library thread pools inside each only oversubscribe cores.
    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    # A worker starts from a fresh interpreter: give it the run's log, so a skipped file is named
    # in OUTPUT_DIR/log.txt like everything else.
    setup_logger(output_dir, rank)
    if trainer_pid:
        threading.Thread(
            target=_exit_with, args=(trainer_pid,), name="insloc-trainer-watch", daemon=True
        ).start()


def _exit_with(pid: int) -> None:
    """End this worker as soon as process ``pid``, the trainer, has ended (however it ended).

    A forkserver worker is a child of the forkserver, not of the trainer, so PyTorch's own check
    (is my parent alive?) never fires when the trainer alone is killed; and the forkserver waits
    for its clients, the workers, to close their end of its "alive" pipe. Once the workers are
    gone the forkserver and the resource tracker see end-of-file and exit as well.
    """
    try:
        fd = os.pidfd_open(pid)  # Linux >= 5.3: readable once the process has exited
    except ProcessLookupError:
        os._exit(1)
    except (AttributeError, OSError):  # another OS, or pidfd refused: poll the pid instead
        while _process_exists(pid):
            time.sleep(1.0)
        os._exit(1)
    select.select([fd], [], [])
    os._exit(1)


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only checks that the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, as another user's process
        pass
    return True


def collate_samples(samples: list) -> dict:
    """Collate sample dicts into one batch dict; "bad_files" (each sample's list of the files it
    had to skip) becomes one flat list, since the lists differ in length."""
    bad = [name for s in samples for name in s.get("bad_files", ())]
    batch = default_collate([{k: v for k, v in s.items() if k != "bad_files"} for s in samples])
    batch["bad_files"] = bad
    return batch


def process_batch(cfg, rank: int = None, world_size: int = None) -> tuple:
    """(rank, world_size, this process's share of SOLVER.IMS_PER_BATCH), rank and world size
    defaulting to this process's (see insloc.utils.comm).

    Raises:
        ValueError: SOLVER.IMS_PER_BATCH does not divide among the processes.
    """
    rank = comm.get_rank() if rank is None else rank
    world_size = comm.get_world_size() if world_size is None else world_size
    total = cfg.SOLVER.IMS_PER_BATCH
    if total % world_size:
        raise ValueError(
            f"SOLVER.IMS_PER_BATCH = {total} is not divisible by the {world_size} processes"
        )
    return rank, world_size, total // world_size


def build_pretrain_loader(
    cfg, dataset, start_iter: int = 0, rank: int = None, world_size: int = None, log_dir: str = ""
) -> torch.utils.data.DataLoader:
    """An infinite loader of this rank's batches, starting at iteration ``start_iter``.

    Args:
        cfg: the config (SOLVER.IMS_PER_BATCH is the global batch; DATALOADER.*; SEED).
        dataset: a dataset indexed by (epoch, index) keys.
        start_iter: first iteration (resume).
        rank, world_size: default to this process's (see insloc.utils.comm).
        log_dir: folder whose log.txt the workers append to ("" = console only).
    Returns:
        a DataLoader yielding collated dicts of the dataset's samples.
    """
    rank, world_size, batch = process_batch(cfg, rank, world_size)
    sampler = PretrainBatchSampler(
        len(dataset),
        batch,
        seed=cfg.SEED,
        rank=rank,
        world_size=world_size,
        start_iter=start_iter,
    )
    return torch.utils.data.DataLoader(
        dataset,
        batch_sampler=sampler,
        collate_fn=collate_samples,
        **worker_options(cfg, log_dir, rank),
    )


def worker_options(cfg, log_dir: str = "", rank: int = 0, persistent: bool = True) -> dict:
    """DataLoader keyword arguments for DATALOADER.* workers, shared by every loader of insloc.

    Args:
        cfg: the config (DATALOADER.*, SEED).
        log_dir: folder whose log.txt the workers append to ("" = console only).
        rank: this process, for the workers' log.
        persistent: keep the workers between iterations over the loader (training streams).
    """
    workers = cfg.DATALOADER.NUM_WORKERS
    extra = {}
    if workers > 0:
        extra = dict(
            # Workers start from a fresh interpreter (forkserver), not a fork of a process whose
            # OpenMP, OpenCV or CUDA state may be mid-use: forked workers deadlock there.
            multiprocessing_context="forkserver",
            persistent_workers=persistent,
            prefetch_factor=cfg.DATALOADER.PREFETCH_FACTOR,
            # The workers exit within moments of this process, even when it is SIGKILLed alone
            # (the OOM killer, a preemption): see _exit_with.
            worker_init_fn=partial(
                _worker_init, output_dir=log_dir, rank=rank, trainer_pid=os.getpid()
            ),
        )
    return dict(
        num_workers=workers,
        pin_memory=bool(cfg.DATALOADER.PIN_MEMORY and torch.cuda.is_available()),
        # Samples draw from their own (SEED, epoch, index) generators; a private generator keeps
        # the loader from consuming the global torch RNG, which a resumed run restores exactly.
        generator=torch.Generator().manual_seed(cfg.SEED),
        **extra,
    )
