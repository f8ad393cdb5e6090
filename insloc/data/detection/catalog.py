"""Detection datasets by name: a small registry of loaders, the dataset root, COCO json by path.

A loader takes the config and returns ``(records, metadata)`` (format: insloc.data.detection). The
built-in names follow detectron2's layout under the dataset root, which is the first of
``$INSLOC_DATASETS``, ``$DETECTRON2_DATASETS`` and ``./datasets`` that is set:

    <root>/VOC2007/{Annotations, ImageSets/Main/<split>.txt, JPEGImages}    voc_2007_<split>
    <root>/VOC2012/...                                                      voc_2012_<split>
    <root>/coco/annotations/instances_{train,val}2017.json
    <root>/coco/{train,val}2017/                                            coco_2017_{train,val}

Any other COCO-format json is named by its path: ``path/to/x.json`` (images under
DATASETS.IMAGE_ROOT, or the json's folder when that is empty) or ``path/to/x.json:image/folder``.
``synthetic_train`` and ``synthetic_test`` are insloc's synthetic scenes (DATASETS.SYNTHETIC.*).
"""

import os
from functools import partial

from ...config.registry import register_config_check
from .coco import load_coco_json
from .synthetic import TEST_SEED_OFFSET, load_synthetic
from .voc import VOC_LAYOUT, load_voc_instances

__all__ = [
    "UnknownDatasetError",
    "dataset_root",
    "get_detection_dataset",
    "is_dataset_name",
    "list_detection_datasets",
    "parse_json_name",
    "register_detection_dataset",
]

_LOADERS = {}

_ROOT_RULE = "the root is $INSLOC_DATASETS, else $DETECTRON2_DATASETS, else ./datasets"


class UnknownDatasetError(KeyError, ValueError):
    """A dataset name that is neither registered nor a json path (a KeyError, and a ValueError:
    bad input, one line at a tool's boundary)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def register_detection_dataset(name: str, loader) -> None:
    """Make ``name`` usable in DATASETS.TRAIN / DATASETS.TEST.

    Args:
        name: the dataset's name (not ending in ``.json``: those are paths).
        loader: ``loader(cfg) -> (records, metadata)``.
    """
    if name in _LOADERS:
        raise ValueError(f"detection dataset {name!r} is already registered")
    if ".json" in name:
        raise ValueError(f"detection dataset name {name!r}: names with '.json' are json paths")
    _LOADERS[name] = loader


def list_detection_datasets() -> list:
    """The registered names, sorted."""
    return sorted(_LOADERS)


def dataset_root() -> str:
    """The folder the built-in datasets live under (see the module docstring)."""
    for var in ("INSLOC_DATASETS", "DETECTRON2_DATASETS"):
        if os.environ.get(var):
            return os.path.expanduser(os.environ[var])
    return "datasets"


def parse_json_name(name: str, default_image_root: str = ""):
    """Split ``x.json`` or ``x.json:image_root`` into (json file, image root).

    Returns:
        (json_file, image_root), or None when ``name`` is not a json path. Without an explicit
        image root, ``default_image_root`` or else the json's folder is used.
    """
    if name.endswith(".json"):
        json_file, image_root = name, ""
    elif ".json:" in name:
        json_file, image_root = name.split(".json:", 1)
        json_file += ".json"
    else:
        return None
    if not image_root:
        image_root = default_image_root or os.path.dirname(os.path.abspath(json_file))
    return json_file, image_root


def is_dataset_name(name: str) -> bool:
    """Whether ``name`` is registered or a json path (no file system access)."""
    return name in _LOADERS or parse_json_name(name) is not None


@register_config_check
def check_dataset_names(cfg, fail) -> None:
    """DATASETS.TRAIN and DATASETS.TEST hold registered names or json paths (no file system
    access): a typo is one line naming the key when the config loads. A dense config's
    DATASETS.TEST is a matching benchmark, checked by dense_match."""
    dense = cfg.MODEL.META_ARCHITECTURE == "Dense"
    for key in ("DATASETS.TRAIN",) if dense else ("DATASETS.TRAIN", "DATASETS.TEST"):
        for name in cfg.DATASETS[key.split(".")[1]]:
            if not isinstance(name, str) or not is_dataset_name(name):
                fail(
                    key,
                    f"dataset names (see docs/data.md 'Detection data') or COCO json paths "
                    f"'x.json[:image_root]'; {name!r} is neither",
                )


def get_detection_dataset(name: str, cfg):
    """(records, metadata) of dataset ``name``; metadata["name"] is set to ``name``.

    Raises:
        UnknownDatasetError: unknown name, a KeyError (the message lists the registered ones).
        FileNotFoundError: the dataset's folder or files are missing (the message gives the layout).
        ValueError: a file is malformed (the message names it).
    """
    parsed = parse_json_name(name, cfg.DATASETS.IMAGE_ROOT)
    if parsed is not None:
        records, metadata = load_coco_json(*parsed, name=name)
    elif name in _LOADERS:
        records, metadata = _LOADERS[name](cfg)
    else:
        raise UnknownDatasetError(
            f"unknown detection dataset {name!r}: expected a COCO json path (x.json or "
            f"x.json:image_root) or one of {', '.join(list_detection_datasets())}"
        )
    metadata = dict(metadata, name=name)
    return records, metadata


def _voc(cfg, year: int, split: str, name: str):
    dirname = os.path.join(dataset_root(), f"VOC{year}")
    if not os.path.isdir(dirname):
        raise FileNotFoundError(
            f"dataset {name}: {dirname} not found; expected {dirname}/{VOC_LAYOUT} ({_ROOT_RULE})"
        )
    return load_voc_instances(dirname, split, year, name=name)


def _coco(cfg, split: str, name: str):
    root = os.path.join(dataset_root(), "coco")
    json_file = os.path.join(root, "annotations", f"instances_{split}.json")
    image_root = os.path.join(root, split)
    if not (os.path.isfile(json_file) and os.path.isdir(image_root)):
        raise FileNotFoundError(
            f"dataset {name}: expected {json_file} and the images in {image_root}/ ({_ROOT_RULE})"
        )
    return load_coco_json(json_file, image_root, name=name)


def _synthetic(cfg, train: bool):
    syn = cfg.DATASETS.SYNTHETIC
    if train:
        return load_synthetic(syn.NUM_IMAGES, syn.IMAGE_SIZE, syn.SEED)
    return load_synthetic(syn.NUM_TEST_IMAGES, syn.IMAGE_SIZE, syn.SEED + TEST_SEED_OFFSET)


_VOC_SPLITS = {2007: ("trainval", "train", "val", "test"), 2012: ("trainval", "train", "val")}


def _register_builtins():
    for year, splits in _VOC_SPLITS.items():
        for split in splits:
            name = f"voc_{year}_{split}"
            register_detection_dataset(name, partial(_voc, year=year, split=split, name=name))
    for split in ("train", "val"):
        name = f"coco_2017_{split}"
        register_detection_dataset(name, partial(_coco, split=f"{split}2017", name=name))
    register_detection_dataset("synthetic_train", partial(_synthetic, train=True))
    register_detection_dataset("synthetic_test", partial(_synthetic, train=False))


_register_builtins()
