"""Build the detection training and test loaders from a config."""

import logging

import torch

from ...utils import comm
from ..build import process_batch, worker_options
from ..image_io import BadImageError, UnreadableDataError, check_some_readable, read_image_size
from ..samplers import PretrainBatchSampler
from .catalog import get_detection_dataset
from .dataset import DetectionTestDataset, DetectionTrainDataset
from .mapper import DetectionMapper, is_training_annotation, read_record_image
from .samplers import GroupedBatchSampler, aspect_groups, inference_shard

__all__ = [
    "build_detection_test_loader",
    "check_test_set",
    "build_detection_train_dataset",
    "build_detection_train_loader",
    "training_records",
]

logger = logging.getLogger("insloc.data")


def _as_list(samples: list) -> list:
    """Batches stay plain lists of samples: images of different sizes are padded by the model."""
    return samples


def training_records(records: list, keep_difficult: bool, filter_empty: bool) -> list:
    """Records with only their training annotations (no crowd regions; no difficult objects unless
    ``keep_difficult``), and, with ``filter_empty``, without the images left with none."""
    out = []
    for r in records:
        annotations = [a for a in r["annotations"] if is_training_annotation(a, keep_difficult)]
        if annotations or not filter_empty:
            record = {k: v for k, v in r.items() if k != "voc_objects"}  # evaluation only
            out.append(dict(record, annotations=annotations))
    return out


def build_detection_train_dataset(cfg) -> DetectionTrainDataset:
    """The training set of DATASETS.TRAIN (concatenated in order), filtered for training.

    Its ``metadata`` attribute is the first dataset's metadata; its ``group_ids`` the aspect group
    of every image. Masks are put in the samples when every training instance has a segmentation.
    """
    names = list(cfg.DATASETS.TRAIN)
    if not names:
        raise ValueError("DATASETS.TRAIN is empty: name at least one detection dataset")
    records, metadata = [], None
    for name in names:
        recs, meta = get_detection_dataset(name, cfg)
        if not recs and meta.get("missing_images"):
            missing = meta["missing_images"]
            raise UnreadableDataError(
                f"DATASETS.TRAIN {name}: all {len(missing)} images of its annotations are missing "
                f"on disk (first: {missing[0]}); check the path and DATASETS.IMAGE_ROOT"
            )
        if metadata is None:
            metadata = meta
        elif meta["thing_classes"] != metadata["thing_classes"]:
            raise ValueError(
                f"DATASETS.TRAIN: {name} has other classes than {names[0]} "
                f"({len(meta['thing_classes'])} vs {len(metadata['thing_classes'])}); "
                f"datasets trained together need the same classes in the same order"
            )
        records.extend(recs)
    total = len(records)
    records = training_records(
        records, cfg.DATASETS.TRAIN_ON_DIFFICULT, cfg.DATALOADER.FILTER_EMPTY_ANNOTATIONS
    )
    if len(records) < total:
        logger.info(
            "training set: %d of %d images kept (DATALOADER.FILTER_EMPTY_ANNOTATIONS: images "
            "without a non-crowd%s annotation dropped)",
            len(records),
            total,
            "" if cfg.DATASETS.TRAIN_ON_DIFFICULT else ", non-difficult",
        )
    annotations = [a for r in records for a in r["annotations"]]
    with_segm = sum("segmentation" in a for a in annotations)
    with_masks = bool(annotations) and with_segm == len(annotations)
    if 0 < with_segm < len(annotations):
        logger.warning(
            "training set: only %d of %d instances have a segmentation; samples carry no masks",
            with_segm,
            len(annotations),
        )
    mapper = DetectionMapper.from_config(cfg, is_train=True, with_masks=with_masks)
    dataset = DetectionTrainDataset(records, mapper, seed=cfg.SEED)
    packed = dataset.records
    check_some_readable(
        len(packed), lambda i: read_record_image(packed[i]), f"DATASETS.TRAIN {', '.join(names)}"
    )
    dataset.metadata = metadata
    dataset.group_ids = aspect_groups(records)
    return dataset


def build_detection_train_loader(
    cfg,
    start_iter: int = 0,
    rank: int = None,
    world_size: int = None,
    log_dir: str = "",
    dataset: DetectionTrainDataset = None,
) -> torch.utils.data.DataLoader:
    """An infinite loader of this rank's training batches from iteration ``start_iter``.

    Args:
        cfg: the config (DATASETS.TRAIN, INPUT.*, DATALOADER.*, SOLVER.IMS_PER_BATCH: the batch
            summed over processes, SEED).
        start_iter: first iteration (resume).
        rank, world_size: default to this process's (see insloc.utils.comm).
        log_dir: folder whose log.txt the workers append to ("" = console only).
        dataset: the training set when already built (its records are read once per run).
    Returns:
        a DataLoader yielding lists of SOLVER.IMS_PER_BATCH / world_size training samples; its
        ``dataset`` has ``metadata``.
    """
    rank, world_size, batch = process_batch(cfg, rank, world_size)
    if dataset is None:
        dataset = build_detection_train_dataset(cfg)
    args = dict(seed=cfg.SEED, rank=rank, world_size=world_size, start_iter=start_iter)
    if cfg.DATALOADER.ASPECT_RATIO_GROUPING:
        sampler = GroupedBatchSampler(dataset.group_ids, batch, **args)
    else:
        sampler = PretrainBatchSampler(len(dataset), batch, **args)
    return torch.utils.data.DataLoader(
        dataset,
        batch_sampler=sampler,
        collate_fn=_as_list,
        **worker_options(cfg, log_dir, rank),
    )


def build_detection_test_loader(
    cfg, dataset_name: str, rank: int = None, world_size: int = None, log_dir: str = ""
):
    """This rank's shard of the test set ``dataset_name``, in order, one sample per batch.

    Args:
        cfg: the config (INPUT.MIN_SIZE_TEST, INPUT.MAX_SIZE_TEST, DATALOADER.*).
        dataset_name: a name get_detection_dataset knows.
        rank, world_size: default to this process's; shards are contiguous and disjoint.
        log_dir: folder whose log.txt the workers append to ("" = console only).
    Returns:
        (loader, metadata): the DataLoader yields lists of one test sample; its
        ``dataset.records`` are all the set's records (the evaluators' ground truth), not only
        this shard's.
    """
    rank = comm.get_rank() if rank is None else rank
    world_size = comm.get_world_size() if world_size is None else world_size
    records, metadata = get_detection_dataset(dataset_name, cfg)
    dataset = DetectionTestDataset(records, DetectionMapper.from_config(cfg, is_train=False))
    dataset.metadata = metadata
    loader = torch.utils.data.DataLoader(
        dataset,
        sampler=inference_shard(len(dataset), rank, world_size),
        batch_size=1,
        collate_fn=_as_list,
        **worker_options(cfg, log_dir, rank, persistent=False),
    )
    return loader, metadata


def check_test_set(name: str, records, metadata: dict) -> None:
    """Check, before any training or inference, that test set ``name`` can be scored whole: no
    image of its annotations missing on disk, every header readable and of the annotated size.

    A test set is scored whole (objects of an image not run count as misses), so an image that
    cannot be run is an error now rather than a crash after training. Headers only are read: an
    image whose pixel data is damaged still fails when it is evaluated.

    Raises:
        ValueError: naming the test set and the first image at fault.
    """
    missing = metadata.get("missing_images") or []
    if missing:
        raise ValueError(
            f"test set {name}: {len(missing)} image(s) of its annotations are missing on disk "
            f"(first: {missing[0]}); a test set is scored whole: restore them, or remove them "
            "from the annotations"
        )
    for record in records:
        if "synthetic" in record:
            continue
        try:
            h, w = read_image_size(record["file_name"])
        except BadImageError as e:
            raise ValueError(f"test set {name}: unreadable image {e}") from None
        if (h, w) != (record["height"], record["width"]):
            raise ValueError(
                f"test set {name}: {record['file_name']} is {w}x{h} but its annotation says "
                f"{record['width']}x{record['height']}"
            )
