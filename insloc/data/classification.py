"""Labelled image sets for linear evaluation: folder-per-class trees, CIFAR-10, STL-10.

- A folder-per-class tree (ImageNet's and Places' layout): ``root/<class>/**/<image>``, classes in
  sorted order; a class folder without images is an error naming it.
- CIFAR-10 in its published python format (``cifar-10-batches-py``: ``data_batch_1..5``,
  ``test_batch``, ``batches.meta``), read with insloc's restricted unpickler
  (:func:`insloc.utils.safe_pickle.restricted_load`): a pickle naming any other callable than
  numpy's array constructors is refused, never executed.
- STL-10 in its published binary format (``stl10_binary``: ``train_X.bin`` / ``train_y.bin``,
  ``test_X.bin`` / ``test_y.bin``, ``class_names.txt``): uint8 images 3 x 96 x 96 stored
  column-major, labels 1..10.
"""

import os

import numpy as np

from ..utils.safe_pickle import restricted_load
from .packed_sources import CIFAR10_EXPECTED
from .sources import IMAGE_EXTENSIONS, FileImageSource

__all__ = [
    "ArrayClassification",
    "FolderClassification",
    "LabelledImages",
    "load_cifar10",
    "load_classification_split",
    "load_stl10",
    "subset_per_class",
]


class LabelledImages:
    """Images with integer labels. Attributes: ``labels`` (N int64), ``class_names``,
    ``description`` (what it was read from)."""

    labels: np.ndarray
    class_names: list
    description: str

    def __len__(self) -> int:
        return len(self.labels)

    def load(self, i: int) -> np.ndarray:
        """Image ``i`` as H x W x 3 uint8 RGB."""
        raise NotImplementedError

    def name(self, i: int) -> str:
        """What a message should call image ``i`` (its path, for files)."""
        return f"{self.description}[{i}]"

    def subset(self, indices) -> "LabelledImages":
        return _Subset(self, np.asarray(indices, np.int64))


class _Subset(LabelledImages):
    def __init__(self, parent: LabelledImages, indices: np.ndarray):
        self.parent, self.indices = parent, indices
        self.labels = parent.labels[indices]
        self.class_names = parent.class_names
        self.description = f"{parent.description} ({len(indices)} of {len(parent)})"

    def load(self, i: int) -> np.ndarray:
        return self.parent.load(int(self.indices[i]))

    def name(self, i: int) -> str:
        return self.parent.name(int(self.indices[i]))


class ArrayClassification(LabelledImages):
    """Images held in memory.

    Args: images: N x H x W x 3 uint8; labels: N; class_names; description.
    """

    def __init__(self, images: np.ndarray, labels, class_names, description: str = "arrays"):
        if images.ndim != 4 or images.shape[3] != 3 or images.dtype != np.uint8:
            raise ValueError(
                f"{description}: expected N x H x W x 3 uint8 images, got {images.shape}"
            )
        self.images = images
        self.labels = np.asarray(labels, np.int64)
        self.class_names = list(class_names)
        self.description = description

    def load(self, i: int) -> np.ndarray:
        return self.images[i]


class FolderClassification(LabelledImages):
    """``root/<class>/**/<image>``; every sub-folder of ``root`` is a class (sorted by name)."""

    def __init__(self, root: str):
        if not os.path.isdir(root):
            raise FileNotFoundError(f"image folder {root!r} does not exist")
        classes = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
        if not classes:
            raise ValueError(f"{root}: expected one sub-folder of images per class, found none")
        paths, labels = [], []
        for label, name in enumerate(classes):
            folder = os.path.join(root, name)
            try:
                source = FileImageSource.from_folder(folder)
            except ValueError:
                raise ValueError(
                    f"class folder {folder!r} has no images ({', '.join(IMAGE_EXTENSIONS)})"
                ) from None
            paths += [os.path.relpath(source.name(i), root) for i in range(len(source))]
            labels += [label] * len(source)
        self.source = FileImageSource(paths, root=root, description=root)
        self.labels = np.asarray(labels, np.int64)
        self.class_names = classes
        self.description = root

    def load(self, i: int) -> np.ndarray:
        return self.source.load(i)

    def name(self, i: int) -> str:
        return self.source.name(i)


def _key(d: dict, name: str):
    """CIFAR dicts have bytes keys (pickled by Python 2); accept str keys too."""
    for k in (name.encode(), name):
        if k in d:
            return d[k]
    raise KeyError(name)


def load_cifar10(root: str, split: str = "train") -> ArrayClassification:
    """CIFAR-10 from the published python version (``root`` holds ``data_batch_1`` ...).

    Args:
        root: the ``cifar-10-batches-py`` folder.
        split: "train" (data_batch_1..5) or "test" (test_batch).
    Returns:
        50000 (10000) images 32 x 32 x 3 with labels 0..9.
    """
    names = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    if split not in ("train", "test"):
        raise ValueError(f"CIFAR-10 split {split!r}: expected 'train' or 'test'")
    images, labels = [], []
    for name in names:
        path = os.path.join(root, name)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"CIFAR-10 batch {path!r} does not exist")
        batch = restricted_load(path, CIFAR10_EXPECTED)
        try:
            data = np.asarray(_key(batch, "data"), np.uint8)
            batch_labels = list(_key(batch, "labels"))
        except (KeyError, TypeError):
            raise ValueError(f"{path}: expected a dict with 'data' and 'labels'") from None
        if data.ndim != 2 or data.shape[1] != 3072 or len(batch_labels) != len(data):
            raise ValueError(f"{path}: expected data N x 3072 and N labels, got {data.shape}")
        images.append(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))  # N x 32 x 32 x 3
        labels += batch_labels
    meta = os.path.join(root, "batches.meta")
    classes = [str(i) for i in range(10)]
    if os.path.isfile(meta):
        classes = [
            n.decode() if isinstance(n, bytes) else n
            for n in _key(restricted_load(meta, CIFAR10_EXPECTED), "label_names")
        ]
    return ArrayClassification(
        np.ascontiguousarray(np.concatenate(images)), labels, classes, f"CIFAR-10 {split} ({root})"
    )


def load_stl10(root: str, split: str = "train") -> ArrayClassification:
    """STL-10 from the published binary version (``root`` holds ``train_X.bin`` ...).

    Args:
        root: the ``stl10_binary`` folder.
        split: "train" (5000 labelled) or "test" (8000).
    Returns:
        images 96 x 96 x 3 with labels 0..9 (the files store 1..10).
    """
    if split not in ("train", "test"):
        raise ValueError(f"STL-10 split {split!r}: expected 'train' or 'test'")
    x_path, y_path = (os.path.join(root, f"{split}_{s}.bin") for s in ("X", "y"))
    for path in (x_path, y_path):
        if not os.path.isfile(path):
            raise FileNotFoundError(f"STL-10 file {path!r} does not exist")
    x = np.fromfile(x_path, dtype=np.uint8)
    y = np.fromfile(y_path, dtype=np.uint8).astype(np.int64) - 1
    if x.size != len(y) * 3 * 96 * 96 or (len(y) and not 0 <= y.min() <= y.max() <= 9):
        raise ValueError(
            f"{x_path}: expected {len(y)} images of 3 x 96 x 96 bytes and labels 1..10"
        )
    # stored per image as 3 planes of 96 x 96 in column-major order
    images = x.reshape(-1, 3, 96, 96).transpose(0, 3, 2, 1)  # N x H x W x 3
    names_file = os.path.join(root, "class_names.txt")
    classes = [str(i) for i in range(10)]
    if os.path.isfile(names_file):
        with open(names_file) as f:
            classes = [line.strip() for line in f if line.strip()]
    return ArrayClassification(np.ascontiguousarray(images), y, classes, f"STL-10 {split} ({root})")


def load_classification_split(root: str, split: str) -> LabelledImages:
    """The ``split`` ("train" or "test") of the set in ``root``, recognised by its files:
    CIFAR-10 (``data_batch_1``), STL-10 (``train_X.bin``), or folder-per-class trees in
    ``root/train`` and ``root/val`` (or ``root/test``)."""
    if not os.path.isdir(root):
        raise FileNotFoundError(f"dataset folder {root!r} does not exist")
    if os.path.isfile(os.path.join(root, "data_batch_1")):
        return load_cifar10(root, split)
    if os.path.isfile(os.path.join(root, "train_X.bin")):
        return load_stl10(root, split)
    names = ["train"] if split == "train" else ["val", "test"]
    for name in names:
        if os.path.isdir(os.path.join(root, name)):
            return FolderClassification(os.path.join(root, name))
    raise ValueError(
        f"{root}: expected CIFAR-10 (data_batch_1), STL-10 (train_X.bin) or class folders under "
        f"{root}/train and {root}/val"
    )


def subset_per_class(labels: np.ndarray, per_class: int, seed: int = 0) -> np.ndarray:
    """Indices of ``per_class`` random examples of every class (semi-supervised subsets); a class
    with fewer examples is an error naming it."""
    rng = np.random.default_rng(seed)
    chosen = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        if len(members) < per_class:
            raise ValueError(f"class {c} has {len(members)} examples, fewer than {per_class} asked")
        chosen.append(rng.choice(members, per_class, replace=False))
    return np.sort(np.concatenate(chosen))
