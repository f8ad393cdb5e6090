"""Unlabelled image sources for pretraining: a folder tree, a COCO json, a .txt list, CIFAR-10's
python batches or STL-10's binary files (``packed_sources``), or synthetic;
``insloc.data.build.build_image_source`` picks one by what its path holds.

Listing never opens an image (ImageNet has 1.28M files): sizes are read from headers when a sample
needs them and broken files surface later as :class:`~insloc.data.image_io.BadImageError`.
"""

import json
import math
import os

import cv2
import numpy as np

from .image_io import read_image, read_image_header
from .synthetic import SyntheticScenes

__all__ = [
    "FileImageSource",
    "ImageSource",
    "SyntheticSource",
]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


class ImageSource:
    """Indexable unlabelled images. Subclasses implement the four methods below."""

    def __len__(self) -> int:
        raise NotImplementedError

    def name(self, i: int) -> str:
        """A path, or ``"synthetic:i"``: what a log message should point at."""
        raise NotImplementedError

    def size(self, i: int) -> tuple:
        """(h, w) of image ``i`` without decoding it."""
        raise NotImplementedError

    def load(self, i: int, reduce: int = 1) -> np.ndarray:
        """Image ``i`` as H x W x 3 uint8 RGB, decoded at about 1/``reduce`` of its size.

        The array may be read-only or shared (a cache, a memory map): datasets never write into it.
        """
        raise NotImplementedError


class _PackedStrings:
    """Strings in one byte buffer plus offsets.

    A Python list of 1.28M str would be copied page by page into every data-loader worker as
    reference counts touch it; two numpy arrays are shared copy-on-write and never written.
    """

    def __init__(self, strings):
        encoded = [s.encode("utf-8") for s in strings]
        self._offsets = np.zeros(len(encoded) + 1, np.int64)
        np.cumsum([len(b) for b in encoded], out=self._offsets[1:])
        self._buffer = (
            np.frombuffer(b"".join(encoded), np.uint8) if encoded else np.zeros(0, np.uint8)
        )

    def __len__(self) -> int:
        return len(self._offsets) - 1

    def __getitem__(self, i: int) -> str:
        return self._buffer[self._offsets[i] : self._offsets[i + 1]].tobytes().decode("utf-8")


class FileImageSource(ImageSource):
    """Images on disk, as paths relative to ``root`` (absolute paths are kept as they are).

    Args:
        paths: image paths, in the order that defines the indices.
        root: directory relative paths are resolved against.
        description: what the list came from, for error messages.
    """

    def __init__(self, paths, root: str = "", description: str = ""):
        self.root = root
        self.description = description or root
        self._paths = _PackedStrings(paths)
        if len(self._paths) == 0:
            raise ValueError(f"{self.description}: no images found")
        # (h, w, EXIF orientation) of each image once its header has been read, 0s before: an
        # InsLoc sample reads three headers (its foreground and two backgrounds), and a PNG's
        # header walk costs a fifth of its decode. One array, shared copy-on-write like the paths.
        self._headers = np.zeros((len(self._paths), 3), np.int32)

    def __len__(self) -> int:
        return len(self._paths)

    def name(self, i: int) -> str:
        return os.path.join(self.root, self._paths[i])

    def size(self, i: int) -> tuple:
        header = self._headers[i]
        if not header[2]:
            header[:] = read_image_header(self.name(i))
        return int(header[0]), int(header[1])

    def load(self, i: int, reduce: int = 1) -> np.ndarray:
        # the orientation read with the size, when it was (0: not yet, read from the file)
        return read_image(self.name(i), reduce, int(self._headers[i, 2]) or None)

    @classmethod
    def from_folder(cls, folder: str) -> "FileImageSource":
        """Every image under ``folder`` (recursive, extensions in IMAGE_EXTENSIONS, any case).

        Sorted by relative path, so indices do not depend on the file system's listing order.
        ImageNet's ``train/<wnid>/<file>.JPEG`` layout is just a folder tree.
        """
        paths = []
        for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
            dirnames.sort()
            rel = os.path.relpath(dirpath, folder)
            for f in filenames:
                if os.path.splitext(f)[1].lower() in IMAGE_EXTENSIONS:
                    paths.append(f if rel == "." else os.path.join(rel, f))
        if not paths:
            raise ValueError(
                f"{folder}: no images found (searched recursively for extensions "
                f"{', '.join(IMAGE_EXTENSIONS)})"
            )
        paths.sort()
        return cls(paths, root=folder, description=folder)

    @classmethod
    def from_coco_json(cls, json_file: str, image_root: str = "") -> "FileImageSource":
        """``images[*].file_name`` of a COCO json, relative to ``image_root`` or the json's dir."""
        with open(json_file) as f:
            try:
                data = json.load(f)
            except json.JSONDecodeError as e:
                raise ValueError(f"{json_file}: not valid json ({e})") from None
        images = data.get("images") if isinstance(data, dict) else None
        if not images:
            raise ValueError(f"{json_file}: expected a COCO json with a non-empty 'images' list")
        try:
            paths = [im["file_name"] for im in images]
        except (KeyError, TypeError):
            raise ValueError(f"{json_file}: every entry of 'images' needs a 'file_name'") from None
        root = image_root or os.path.dirname(os.path.abspath(json_file))
        return cls(paths, root=root, description=json_file)

    @classmethod
    def from_list(cls, txt_file: str, image_root: str = "") -> "FileImageSource":
        """Paths in a .txt file, one a line; blank lines and ``#`` comments are ignored."""
        with open(txt_file) as f:
            lines = [line.strip() for line in f]
        paths = [line for line in lines if line and not line.startswith("#")]
        if not paths:
            raise ValueError(f"{txt_file}: expected image paths, one a line; found none")
        root = image_root or os.path.dirname(os.path.abspath(txt_file))
        return cls(paths, root=root, description=txt_file)


class SyntheticSource(ImageSource):
    """The images of :class:`~insloc.data.synthetic.SyntheticScenes` as an unlabelled source."""

    def __init__(self, num_images: int, image_size: int, seed: int = 0):
        self.scenes = SyntheticScenes(num_images, image_size, seed)

    def __len__(self) -> int:
        return len(self.scenes)

    def name(self, i: int) -> str:
        return f"synthetic:{i}"

    def size(self, i: int) -> tuple:
        return self.scenes.image_size, self.scenes.image_size

    def load(self, i: int, reduce: int = 1) -> np.ndarray:
        image = self.scenes[i]["image"]
        if reduce > 1:
            side = math.ceil(self.scenes.image_size / reduce)
            image = cv2.resize(image, (side, side), interpolation=cv2.INTER_AREA)
        return image
