"""The detection mapper: a dataset record and its decoded image -> a training or test sample.

Training samples (a batch is a plain list of them)::

    {"image": 3 x H x W uint8 RGB (resized, maybe flipped), "height", "width" (original size),
     "image_id", "file_name", "bad_files" (the unreadable files replaced while building it),
     "instances": {"boxes": N x 4 float32 XYXY resized pixels, "classes": N int64,
                   "masks": N lists of float32 polygons (when the dataset has masks)}}

Test samples are the same without ``instances`` and ``bad_files``, resized to the test size.
"""

import numpy as np
import torch

from ..image_io import BadImageError, read_image
from .masks import segmentation_to_polygons
from .synthetic import render_synthetic
from .transforms import ResizeFlip, resize_shape, sample_short_edge

__all__ = ["DetectionMapper", "is_training_annotation", "read_record_image"]

# detectron2's Boxes.nonempty threshold: boxes thinner than this after the transform are dropped.
_MIN_BOX_SIDE = 1e-5


def is_training_annotation(annotation: dict, keep_difficult: bool = False) -> bool:
    """Whether an annotation becomes a training instance: never a crowd region, and a VOC
    "difficult" object only with ``keep_difficult``."""
    if annotation.get("iscrowd", 0):
        return False
    return keep_difficult or not annotation.get("difficult", 0)


def read_record_image(record: dict) -> np.ndarray:
    """The record's image, H x W x 3 uint8 RGB.

    Raises:
        BadImageError: the file cannot be read, or its size differs from the record's.
    """
    if "synthetic" in record:
        image = render_synthetic(record["synthetic"])
    else:
        image = read_image(record["file_name"])
    if image.shape[:2] != (record["height"], record["width"]):
        raise BadImageError(
            f"{record['file_name']}: image is {image.shape[1]}x{image.shape[0]} but its "
            f"annotation says {record['width']}x{record['height']}"
        )
    return image


class DetectionMapper:
    """Resize (and at training time flip) a record's image and annotations into a sample.

    Args:
        is_train: training samples (random size and flip, instances) or test samples.
        min_sizes: short-edge lengths: the candidates (sampling "choice"), (low, high) (sampling
            "range"), or at test time one length (0: keep the size).
        max_size: cap of the longer side.
        sampling: "choice" or "range".
        flip: draw a horizontal flip with probability 0.5 (training only).
        with_masks: put polygon masks in training instances.
        keep_difficult: train on VOC objects marked difficult.
    """

    def __init__(
        self,
        *,
        is_train: bool,
        min_sizes,
        max_size: int,
        sampling: str = "choice",
        flip: bool = True,
        with_masks: bool = False,
        keep_difficult: bool = False,
    ):
        if sampling not in ("choice", "range"):
            raise ValueError(f"sampling {sampling!r}: expected 'choice' or 'range'")
        if sampling == "range" and len(min_sizes) != 2:
            raise ValueError(f"sampling 'range' needs (low, high) sizes, got {tuple(min_sizes)}")
        self.is_train = is_train
        self.min_sizes = tuple(int(s) for s in min_sizes)
        self.max_size = max_size
        self.sampling = sampling
        self.flip = flip
        self.with_masks = with_masks
        self.keep_difficult = keep_difficult

    @classmethod
    def from_config(cls, cfg, is_train: bool, with_masks: bool = False) -> "DetectionMapper":
        i = cfg.INPUT
        if is_train:
            return cls(
                is_train=True,
                min_sizes=i.MIN_SIZE_TRAIN,
                max_size=i.MAX_SIZE_TRAIN,
                sampling=i.MIN_SIZE_TRAIN_SAMPLING,
                flip=i.RANDOM_FLIP == "horizontal",
                with_masks=with_masks,
                keep_difficult=cfg.DATASETS.TRAIN_ON_DIFFICULT,
            )
        return cls(is_train=False, min_sizes=(i.MIN_SIZE_TEST,), max_size=i.MAX_SIZE_TEST)

    def plan(self, record: dict, rng: np.random.Generator = None) -> ResizeFlip:
        """The transform of ``record``: every random draw of a training sample happens here, in
        this order (short edge, then flip), before anything is decoded."""
        if self.is_train:
            short = sample_short_edge(rng, self.min_sizes, self.sampling)
            flip = bool(self.flip and rng.random() < 0.5)
        else:
            short, flip = self.min_sizes[0], False
        h, w = record["height"], record["width"]
        return ResizeFlip(h, w, *resize_shape(h, w, short, self.max_size), flip=flip)

    def __call__(self, record: dict, image: np.ndarray, plan: ResizeFlip) -> dict:
        """The sample of ``record`` from its decoded image (H x W x 3 uint8) and its plan."""
        image = plan.apply_image(image)
        sample = {
            "image": torch.from_numpy(image).permute(2, 0, 1).contiguous(),  # 3 x H' x W' uint8
            "height": record["height"],
            "width": record["width"],
            "image_id": record["image_id"],
            "file_name": record["file_name"],
        }
        if self.is_train:
            sample["instances"] = self._instances(record["annotations"], plan)
        return sample

    def _instances(self, annotations: list, plan: ResizeFlip) -> dict:
        annotations = [a for a in annotations if is_training_annotation(a, self.keep_difficult)]
        boxes = plan.apply_boxes([a["bbox"] for a in annotations])  # N x 4 float64
        # Clip to the output image, then drop what the clipping emptied (detectron2's
        # transform_instance_annotations and filter_empty_instances).
        boxes = np.clip(boxes, 0, [plan.new_w, plan.new_h, plan.new_w, plan.new_h])
        keep = ((boxes[:, 2] - boxes[:, 0]) > _MIN_BOX_SIDE) & (
            (boxes[:, 3] - boxes[:, 1]) > _MIN_BOX_SIDE
        )
        kept = [a for a, k in zip(annotations, keep) if k]
        instances = {
            "boxes": torch.from_numpy(boxes[keep].astype(np.float32)).reshape(-1, 4),  # N x 4
            "classes": torch.tensor([a["category_id"] for a in kept], dtype=torch.int64),  # N
        }
        if self.with_masks:
            instances["masks"] = [
                [plan.apply_polygon(p) for p in segmentation_to_polygons(a["segmentation"])]
                for a in kept
            ]
        return instances
