"""Validation of the detection data keys (sizes, sampling, flip). The detector's own keys are
checked by the validation GeneralizedRCNN registers, dataset names by the check the data catalog
registers (insloc.data.detection.catalog.check_dataset_names)."""

from fvcore.common.config import CfgNode

from .checks import check_tables

_DETECTION_DATA_CHOICES = {
    "INPUT.MIN_SIZE_TRAIN_SAMPLING": ("choice", "range"),
    "INPUT.RANDOM_FLIP": ("horizontal", "none"),
}
_DETECTION_DATA_POSITIVE = (
    "INPUT.MAX_SIZE_TRAIN",
    "INPUT.MAX_SIZE_TEST",
    "DATASETS.SYNTHETIC.NUM_TEST_IMAGES",
)


def validate_detection_data(cfg: CfgNode, fail) -> None:
    """Detection data keys: sizes, sampling, flip."""
    check_tables(cfg, fail, _DETECTION_DATA_CHOICES, _DETECTION_DATA_POSITIVE)
    if not cfg.INPUT.MIN_SIZE_TEST >= 0:
        fail("INPUT.MIN_SIZE_TEST", "a value >= 0 (0 keeps the original size)")
    sizes = cfg.INPUT.MIN_SIZE_TRAIN
    if not sizes or any(not isinstance(s, int) or s <= 0 for s in sizes):
        fail("INPUT.MIN_SIZE_TRAIN", "a tuple of positive integers")
    if cfg.INPUT.MIN_SIZE_TRAIN_SAMPLING == "range" and (len(sizes) != 2 or sizes[0] > sizes[1]):
        fail("INPUT.MIN_SIZE_TRAIN", "(low, high) with low <= high for sampling 'range'")
