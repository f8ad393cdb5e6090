"""Detection data: VOC, COCO and synthetic datasets by name, the resize/flip mapper, the loaders.

Dataset record (one per image, from a dataset loader; plain Python, picklable)::

    {"file_name": path or "synthetic:<i>", "image_id": int or str, "height": int, "width": int,
     "annotations": [{"bbox": [x1, y1, x2, y2] absolute pixels, "category_id": 0..C-1,
                      "iscrowd": 0/1, "difficult": 0/1 (VOC), "segmentation": polygons or RLE}]}

Metadata: ``thing_classes``, ``evaluator`` ("coco" or "voc"), ``json_file``, ``name``, and
``thing_dataset_id_to_contiguous_id`` (COCO) or ``year``, ``dirname``, ``split`` (VOC).
"""

from .build import (
    build_detection_test_loader,
    build_detection_train_dataset,
    build_detection_train_loader,
    check_test_set,
    training_records,
)
from .catalog import (
    UnknownDatasetError,
    check_dataset_names,
    dataset_root,
    get_detection_dataset,
    is_dataset_name,
    list_detection_datasets,
    parse_json_name,
    register_detection_dataset,
)
from .coco import load_coco_json
from .dataset import DetectionTestDataset, DetectionTrainDataset, PackedRecords
from .mapper import DetectionMapper, is_training_annotation, read_record_image
from .masks import mask_to_polygons, segmentation_to_polygons
from .samplers import GroupedBatchSampler, aspect_groups, inference_shard
from .synthetic import load_synthetic
from .transforms import ResizeFlip, resize_shape, sample_short_edge
from .voc import VOC_CLASSES, load_voc_instances

__all__ = [
    "DetectionMapper",
    "DetectionTestDataset",
    "DetectionTrainDataset",
    "GroupedBatchSampler",
    "PackedRecords",
    "ResizeFlip",
    "UnknownDatasetError",
    "VOC_CLASSES",
    "aspect_groups",
    "build_detection_test_loader",
    "build_detection_train_dataset",
    "build_detection_train_loader",
    "check_dataset_names",
    "check_test_set",
    "dataset_root",
    "get_detection_dataset",
    "inference_shard",
    "is_dataset_name",
    "is_training_annotation",
    "list_detection_datasets",
    "load_coco_json",
    "load_synthetic",
    "load_voc_instances",
    "mask_to_polygons",
    "parse_json_name",
    "read_record_image",
    "register_detection_dataset",
    "resize_shape",
    "sample_short_edge",
    "segmentation_to_polygons",
    "training_records",
]
