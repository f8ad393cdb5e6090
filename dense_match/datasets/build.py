"""``DATASETS.TEST`` -> a matching benchmark; ``DATASETS.DENSE_TRAIN`` -> a head's training data."""

import os

from insloc.data import SyntheticSource, build_image_source

from .labelled import LabelledImages
from .pf_pascal import PFPascal
from .pf_willow import PFWillow
from .spair import SPair71k
from .warp_pairs import WarpPairs, WarpTrainingPairs, warp_kwargs

__all__ = ["build_matching_dataset", "build_train_dataset"]

LAYOUTS = (
    "a PF-PASCAL root (JPEGImages/, Annotations/<class>/*.mat), a SPair-71k root (JPEGImages/, "
    "PairAnnotation/), a PF-WILLOW root (<sub-class>/*.png + *.mat), or warp:<image folder>"
)


def build_matching_dataset(cfg):
    """The benchmark named by ``DATASETS.TEST`` (one entry; none = synthetic warps of synthetic
    scenes)."""
    m = cfg.MATCHING
    spec = cfg.DATASETS.TEST[0] if cfg.DATASETS.TEST else ""
    if spec == "" or spec.startswith("warp:"):
        if spec:
            source = build_image_source(spec[len("warp:") :])
        else:
            source = SyntheticSource(m.SYNTHETIC_IMAGES, cfg.DENSE.INPUT_SIZE, m.WARP_SEED)
        return WarpPairs(source, m.WARP_PAIRS, m.WARP_KEYPOINTS, m.WARP_SEED, warp_kwargs(cfg))
    if not os.path.isdir(spec):
        raise FileNotFoundError(f"DATASETS.TEST = {spec!r} is not a folder; expected {LAYOUTS}")
    if os.path.isdir(os.path.join(spec, "PairAnnotation")):
        return SPair71k(spec, m.SPAIR_SPLIT)
    if os.path.isdir(os.path.join(spec, "Annotations")):
        return PFPascal(spec, m.PF_PASCAL_PAIRS)
    try:
        return PFWillow(spec)
    except FileNotFoundError:
        raise FileNotFoundError(
            f"DATASETS.TEST = {spec!r} matches no known layout; expected {LAYOUTS}"
        ) from None


def build_train_dataset(cfg, train_data: str):
    """Training data of a head: "warp_pairs" (introspection) or "labelled_images" (AnchorNet)."""
    if train_data == "warp_pairs":
        spec = cfg.DATASETS.DENSE_TRAIN
        if spec == "synthetic":
            s = cfg.DATASETS.SYNTHETIC
            source = SyntheticSource(s.NUM_IMAGES, s.IMAGE_SIZE, s.SEED)
        else:
            source = build_image_source(spec, cfg.DATASETS.IMAGE_ROOT)
        return WarpTrainingPairs.from_config(cfg, source)
    if train_data == "labelled_images":
        return LabelledImages.from_path(
            cfg.DATASETS.DENSE_TRAIN,
            cfg.DENSE.INPUT_SIZE,
            cfg.SEED,
            num_synthetic=cfg.DATASETS.SYNTHETIC.NUM_IMAGES,
            image_root=cfg.DATASETS.IMAGE_ROOT,
        )
    raise ValueError(f"unknown head training data {train_data!r}")
