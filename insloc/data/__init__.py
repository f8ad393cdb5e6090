"""Data: synthetic scenes, unlabelled image sources, copy-paste compositing, box augmentation."""

from .anchor_aug import AnchorBoxSampler
from .build import (
    build_image_source,
    build_pretrain_dataset,
    build_pretrain_loader,
    collate_samples,
    image_source_from_config,
    worker_options,
)
from .color import ColorAugmentation, hflip
from .copy_paste import PastePlan, sample_crop, sample_paste_plan, sample_paste_size
from .datasets import InsLocPretrainDataset, TwoCropDataset, sample_rng
from .exemplar import ExemplarDataset
from .image_io import (
    BadImageError,
    UnreadableDataError,
    check_some_readable,
    choose_reduction,
    read_image,
    read_image_size,
)
from .jigsaw import JigsawDataset
from .relative_loc import RelativeLocDataset
from .rotation import RotationDataset
from .samplers import PretrainBatchSampler
from .sources import FileImageSource, ImageSource, SyntheticSource
from .synthetic import CLASS_NAMES, SyntheticScenes

__all__ = [
    "AnchorBoxSampler",
    "BadImageError",
    "CLASS_NAMES",
    "ColorAugmentation",
    "ExemplarDataset",
    "FileImageSource",
    "ImageSource",
    "InsLocPretrainDataset",
    "JigsawDataset",
    "PastePlan",
    "PretrainBatchSampler",
    "RelativeLocDataset",
    "RotationDataset",
    "SyntheticScenes",
    "SyntheticSource",
    "TwoCropDataset",
    "UnreadableDataError",
    "build_image_source",
    "build_pretrain_dataset",
    "build_pretrain_loader",
    "check_some_readable",
    "choose_reduction",
    "collate_samples",
    "hflip",
    "image_source_from_config",
    "read_image",
    "read_image_size",
    "sample_crop",
    "sample_paste_plan",
    "sample_paste_size",
    "sample_rng",
    "worker_options",
]
