"""PF-PASCAL (Ham et al., Proposal Flow, TPAMI 2018) in its published layout.

    <root>/JPEGImages/<image>.jpg
    <root>/Annotations/<class>/<image>.mat      kps: N x 2 (NaN invisible), bbox: 1 x 4
    pair list CSV: source_image,target_image,class[,XA,YA,XB,YB][,flip]

The CSV (NCNet's release; the 299-pair test list is the standard test set) gives image paths
(only the file name is used), the class as 1-20 in VOC order, and either the keypoints
(';'-separated x and y lists, original pixels) or a flip flag; without keypoints they come from the
class's ``.mat`` files, keeping the points visible in both images' annotations as NaN otherwise.
A flip of 1 mirrors both images of the pair.
"""

import csv
import os

import numpy as np
import scipy.io

from .pairs import PairDataset, require_file

__all__ = ["PFPascal", "VOC_CLASSES"]

VOC_CLASSES = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train",
    "tvmonitor",
)  # fmt: skip

LAYOUT = (
    "PF-PASCAL layout: <root>/JPEGImages/*.jpg and <root>/Annotations/<class>/*.mat, plus a pair "
    "list CSV (MATCHING.PF_PASCAL_PAIRS, default <root>/test_pairs.csv)"
)


def read_annotation(path: str) -> tuple:
    """(kps N x 2 with NaN rows, bbox [x1, y1, x2, y2] or None) from a PF-PASCAL .mat file."""
    try:
        mat = scipy.io.loadmat(path)
    except Exception as e:  # scipy raises several types on a corrupt file
        raise ValueError(f"{path}: cannot read the .mat file ({e})") from None
    if "kps" not in mat:
        raise ValueError(f"{path}: no 'kps' keypoints in the .mat file (expected an N x 2 array)")
    kps = np.asarray(mat["kps"], np.float64).reshape(-1, 2)
    bbox = np.asarray(mat["bbox"], np.float64).ravel().tolist() if "bbox" in mat else None
    return kps, bbox


def _floats(text: str) -> np.ndarray:
    return np.array([float(v) for v in text.split(";")], np.float64)


class PFPascal(PairDataset):
    """Args: root (module docstring); pairs_csv: the pair list ("": <root>/test_pairs.csv)."""

    name = "pf-pascal"

    def __init__(self, root: str, pairs_csv: str = ""):
        for sub in ("JPEGImages", "Annotations"):
            if not os.path.isdir(os.path.join(root, sub)):
                raise FileNotFoundError(f"{root!r} has no {sub}/ folder; expected the {LAYOUT}")
        pairs_csv = pairs_csv or os.path.join(root, "test_pairs.csv")
        require_file(pairs_csv, "MATCHING.PF_PASCAL_PAIRS")
        records = []
        with open(pairs_csv, newline="") as f:
            for row_no, row in enumerate(csv.DictReader(f), start=2):
                records.append(self._record(root, row, f"{pairs_csv}:{row_no}"))
        super().__init__(records)

    @staticmethod
    def _record(root: str, row: dict, where: str) -> dict:
        try:
            category = VOC_CLASSES[int(row["class"]) - 1]
        except (KeyError, ValueError, IndexError):
            raise ValueError(f"{where}: class {row.get('class')!r} is not 1-20") from None
        paths, annos = [], []
        for key in ("source_image", "target_image"):
            name = os.path.basename(row[key])
            paths.append(require_file(os.path.join(root, "JPEGImages", name), where))
            mat = os.path.join(root, "Annotations", category, os.path.splitext(name)[0] + ".mat")
            annos.append(mat)
        trg_kps_mat, trg_bbox = (None, None)
        if os.path.isfile(annos[1]):
            trg_kps_mat, trg_bbox = read_annotation(annos[1])
        if row.get("XA"):
            src = np.stack([_floats(row["XA"]), _floats(row["YA"])], 1)
            trg = np.stack([_floats(row["XB"]), _floats(row["YB"])], 1)
            if src.shape != trg.shape:
                raise ValueError(f"{where}: {len(src)} source but {len(trg)} target keypoints")
        else:
            src, _ = read_annotation(require_file(annos[0], where))
            if trg_kps_mat is None:
                read_annotation(require_file(annos[1], where))
            trg = trg_kps_mat
            if src.shape != trg.shape:
                raise ValueError(f"{where}: the two .mat files have different keypoint counts")
        return {
            "src_path": paths[0],
            "trg_path": paths[1],
            "src_kps": src,
            "trg_kps": trg,
            "trg_bbox": trg_bbox,
            "category": category,
            "name": f"{os.path.basename(paths[0])}-{os.path.basename(paths[1])}",
            "flip": bool(int(row.get("flip") or 0)),
        }
