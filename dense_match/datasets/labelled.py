"""Images with image-level class labels, for AnchorNet: a folder per class, a COCO json, or the
synthetic scenes (their shapes' classes). Keyed by (epoch, index) for exact resume."""

import json
import os

import cv2
import numpy as np
import torch

from insloc.data import BadImageError, SyntheticScenes, UnreadableDataError, sample_rng
from insloc.data.image_io import read_image, warn_unreadable_once
from insloc.data.sources import IMAGE_EXTENSIONS

__all__ = ["LabelledImages"]


class LabelledImages(torch.utils.data.Dataset):
    """Args: items: [(path or scene index, [class ids])]; classes: names; size: square side;
    seed: SEED; scenes: SyntheticScenes when items index them; flip_prob: horizontal flips."""

    def __init__(self, items, classes, size, seed=0, scenes=None, flip_prob=0.5):
        if not items:
            raise ValueError("no labelled training images found")
        self.items = items
        self.classes = list(classes)
        self.size = size
        self.seed = seed
        self.scenes = scenes
        self.flip_prob = flip_prob

    @classmethod
    def from_path(
        cls, path: str, size: int, seed: int = 0, num_synthetic: int = 2048, image_root: str = ""
    ):
        """``path``: "synthetic", a folder with one sub-folder per class, or a COCO json whose
        ``file_name``s are relative to ``image_root`` ("" = the json's folder)."""
        if path == "synthetic":
            from insloc.data import CLASS_NAMES

            scenes = SyntheticScenes(num_synthetic, size, seed)
            items = [(i, None) for i in range(num_synthetic)]
            return cls(items, CLASS_NAMES, size, seed, scenes=scenes)
        if os.path.isdir(path):
            classes = sorted(d for d in os.listdir(path) if os.path.isdir(os.path.join(path, d)))
            items = []
            for c, name in enumerate(classes):
                for root, _, files in sorted(os.walk(os.path.join(path, name))):
                    items += [
                        (os.path.join(root, f), [c])
                        for f in sorted(files)
                        if f.lower().endswith(IMAGE_EXTENSIONS)
                    ]
            if not items:
                raise FileNotFoundError(
                    f"{path!r}: no images in class sub-folders; expected <folder>/<class>/*.jpg"
                )
            return cls(items, classes, size, seed)
        if path.endswith(".json") and os.path.isfile(path):
            with open(path) as f:
                coco = json.load(f)
            cats = sorted(c["id"] for c in coco.get("categories", []))
            contiguous = {cid: i for i, cid in enumerate(cats)}
            names = {c["id"]: c["name"] for c in coco["categories"]}
            labels = {}
            for a in coco.get("annotations", []):
                labels.setdefault(a["image_id"], set()).add(contiguous[a["category_id"]])
            folder = image_root or os.path.dirname(path)
            items = [
                (os.path.join(folder, im["file_name"]), sorted(labels[im["id"]]))
                for im in coco["images"]
                if im["id"] in labels
            ]
            return cls(items, [names[c] for c in cats], size, seed)
        raise FileNotFoundError(
            f"DATASETS.DENSE_TRAIN = {path!r}: expected 'synthetic', a folder with one sub-folder "
            "per class, or a COCO json"
        )

    def __len__(self) -> int:
        return len(self.items)

    def __getitems__(self, keys) -> list:
        return [self[k] for k in keys]

    def load_image(self, index: int):
        """(image, its class ids) of item ``index`` (BadImageError when it cannot be read)."""
        item, labels = self.items[index]
        if self.scenes is not None:
            scene = self.scenes[item]
            return scene["image"], sorted(set(int(x) for x in scene["labels"]))
        return read_image(item), labels

    def __getitem__(self, key) -> dict:
        epoch, index = key
        rng = sample_rng(self.seed, epoch, index)
        bad = []  # names of the unreadable files replaced
        while True:
            try:
                image, labels = self.load_image(index)
                break
            except BadImageError as e:
                bad.append(str(self.items[index][0]))
                warn_unreadable_once(bad[-1], e)
                if len(bad) >= 50:
                    raise UnreadableDataError(
                        f"50 consecutive unreadable images in DATASETS.DENSE_TRAIN (the last: "
                        f"{bad[-1]}); check the data"
                    ) from None
                index = int(rng.integers(len(self.items)))
        image = cv2.resize(image, (self.size, self.size), interpolation=cv2.INTER_AREA)
        if rng.random() < self.flip_prob:
            image = image[:, ::-1]
        target = np.zeros(len(self.classes), np.float32)
        target[labels] = 1
        return {
            "image": torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))),
            "labels": torch.from_numpy(target),  # classes, 0/1
            "num_bad": torch.tensor(len(bad)),
            "bad_files": bad,
        }
