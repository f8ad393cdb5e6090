"""Unlabelled pretraining images straight from the published array formats of CIFAR-10 and STL-10.

- CIFAR-10, python version: the ``cifar-10-batches-py`` folder; its five ``data_batch_{1..5}``
  pickles (dicts with ``data`` N x 3072 uint8, planes R, G, B of 32 x 32) are the 50000 training
  images, read with insloc's restricted unpickler (numpy arrays and plain
  containers only). The labels are ignored.
- STL-10, binary version: the ``stl10_binary`` folder (its ``unlabeled_X.bin``, then
  ``train_X.bin`` when present: 100000 + 5000 images) or one ``*_X.bin`` file; 3 x 96 x 96 bytes
  per image in column-major order, memory-mapped (the unlabelled file is 2.8 GB).

The arrays are opened on first use in each process, never pickled into data-loader workers.
"""

import os

import cv2
import numpy as np

from ..utils.safe_pickle import restricted_load
from .sources import ImageSource

__all__ = ["CIFAR10_TRAIN_BATCHES", "PackedImageSource", "packed_layout"]

CIFAR10_TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
STL10_UNLABELLED = ("unlabeled_X.bin", "train_X.bin")  # the 100k unlabelled images, then train
_STL10_BYTES = 3 * 96 * 96
CIFAR10_EXPECTED = "a CIFAR-10 python batch (a pickle of a dict with 'data' and 'labels')"
_CIFAR10_LAYOUT = "cifar-10-batches-py/data_batch_1 .. data_batch_5 (CIFAR-10, python version)"


def packed_layout(spec: str):
    """ "cifar10" or "stl10" when ``spec`` is one of the layouts above, else None."""
    if os.path.isdir(spec):
        cifar = CIFAR10_TRAIN_BATCHES + ("batches.meta",)
        if any(os.path.isfile(os.path.join(spec, n)) for n in cifar):
            return "cifar10"
        if any(os.path.isfile(os.path.join(spec, n)) for n in STL10_UNLABELLED):
            return "stl10"
        return None
    return "stl10" if spec.endswith("_X.bin") else None


class PackedImageSource(ImageSource):
    """The images of a CIFAR-10 python folder or of STL-10 binary files (module docstring).

    Args:
        spec: the ``cifar-10-batches-py`` folder, the ``stl10_binary`` folder, or an STL-10
            ``*_X.bin`` file.
    Raises:
        FileNotFoundError: a file of the layout is missing (named, with the layout expected).
        ValueError: a file is not in the published format.
    """

    def __init__(self, spec: str):
        self.kind = packed_layout(spec)
        if self.kind is None:
            raise ValueError(
                f"{spec}: expected {_CIFAR10_LAYOUT}, or STL-10's stl10_binary/unlabeled_X.bin"
            )
        self.spec = spec
        self._images = None
        if self.kind == "cifar10":
            self.files = [os.path.join(spec, n) for n in CIFAR10_TRAIN_BATCHES]
            for path in self.files:
                if not os.path.isfile(path):
                    raise FileNotFoundError(f"{path} does not exist: expected {_CIFAR10_LAYOUT}")
            self._images = self._read_cifar()
            self.side, self._len = 32, len(self._images)
        else:
            names = STL10_UNLABELLED if os.path.isdir(spec) else (os.path.basename(spec),)
            root = spec if os.path.isdir(spec) else os.path.dirname(spec)
            self.files = [os.path.join(root, n) for n in names]
            self.files = [p for p in self.files if os.path.isfile(p)]
            if not self.files:
                raise FileNotFoundError(
                    f"{spec} does not exist: expected STL-10's stl10_binary/unlabeled_X.bin"
                )
            counts = []
            for path in self.files:
                size = os.path.getsize(path)
                if size == 0 or size % _STL10_BYTES:
                    raise ValueError(
                        f"{path}: {size} bytes, expected a multiple of 3 x 96 x 96 "
                        "(STL-10 binary images)"
                    )
                counts.append(size // _STL10_BYTES)
            self.side, self._len = 96, int(sum(counts))
            self._starts = np.cumsum([0] + counts)

    def _read_cifar(self) -> np.ndarray:
        images = []
        for path in self.files:
            batch = restricted_load(path, CIFAR10_EXPECTED)
            data = batch.get(b"data", batch.get("data")) if isinstance(batch, dict) else None
            if not isinstance(data, np.ndarray) or data.ndim != 2 or data.shape[1] != 3072:
                raise ValueError(f"{path}: expected a dict with 'data' N x 3072 uint8 (CIFAR-10)")
            images.append(data.astype(np.uint8, copy=False).reshape(-1, 3, 32, 32))
        return np.concatenate(images)  # N x 3 x 32 x 32

    def _arrays(self):
        if self._images is None:
            if self.kind == "cifar10":
                self._images = self._read_cifar()
            else:
                self._images = [
                    np.memmap(p, np.uint8, "r").reshape(-1, 3, 96, 96) for p in self.files
                ]
        return self._images

    def __getstate__(self):
        # a worker reopens the files (a memory map, or 150 MB of CIFAR) instead of receiving them
        return {**self.__dict__, "_images": None}

    def __len__(self) -> int:
        return self._len

    def name(self, i: int) -> str:
        if self.kind == "cifar10":
            return f"{self.spec}[{i}]"
        f = int(np.searchsorted(self._starts, i, side="right")) - 1
        return f"{self.files[f]}[{i - self._starts[f]}]"

    def size(self, i: int) -> tuple:
        return self.side, self.side

    def load(self, i: int, reduce: int = 1) -> np.ndarray:
        if not 0 <= i < self._len:
            raise IndexError(f"image {i} of {self.spec} ({self._len} images)")
        if self.kind == "cifar10":
            image = self._arrays()[i].transpose(1, 2, 0)  # 32 x 32 x 3
        else:
            f = int(np.searchsorted(self._starts, i, side="right")) - 1
            # stored column-major: planes of W x H
            image = self._arrays()[f][i - self._starts[f]].transpose(2, 1, 0)  # 96 x 96 x 3
        image = np.ascontiguousarray(image)
        if reduce > 1:
            side = -(-self.side // reduce)
            image = cv2.resize(image, (side, side), interpolation=cv2.INTER_AREA)
        return image
