"""Reading images from disk: header sizes without decoding, and RGB decoding at a reduced size.

Every failure (missing, empty, truncated, not an image) becomes a :class:`BadImageError` so that the
datasets can skip one bad file of a long run instead of crashing.

EXIF orientation is applied, as the official InsLoc loader (OpenCV's default) does: a phone photo
comes out upright. Both the header size and the decoded pixels take it from the same place (PIL's
reading of the EXIF tag), so the size always describes the pixels, at any decode reduction.
"""

import io
import logging
import math
import os

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

__all__ = [
    "BadImageError",
    "UnreadableDataError",
    "check_some_readable",
    "choose_reduction",
    "read_image",
    "read_image_header",
    "read_image_size",
    "warn_unreadable_once",
]

# JPEG decoders scale by 1/2, 1/4 or 1/8 inside the IDCT, which is where decoding time goes.
_REDUCED_FLAGS = {
    1: cv2.IMREAD_COLOR,
    2: cv2.IMREAD_REDUCED_COLOR_2,
    4: cv2.IMREAD_REDUCED_COLOR_4,
    8: cv2.IMREAD_REDUCED_COLOR_8,
}


class BadImageError(Exception):
    """A file that cannot be read as an image; the message names the file and why."""


# Files already reported by this process: one warning per file, not per use.
_WARNED = set()


def warn_unreadable_once(name: str, error: BadImageError) -> None:
    """Log that training skips file ``name`` (once per file and process; every dataset that
    replaces unreadable files reports them here, and counts them in its samples' ``bad_files``)."""
    if name not in _WARNED:
        _WARNED.add(name)
        logging.getLogger("insloc.data").warning("skipping unreadable image: %s", error)


class UnreadableDataError(ValueError):
    """A whole image set that cannot be read (a wrong image root, a folder of broken files)."""


def check_some_readable(num_images: int, load, what: str, probes: int = 50) -> None:
    """Stop before training when a set's images cannot be read at all: training skips unreadable
    files one by one, so a set of nothing but (a wrong ``DATASETS.IMAGE_ROOT``) would otherwise
    fail only after many draws, inside a data worker.

    Args:
        num_images: the size of the set.
        load: ``load(i)`` reads image ``i`` or raises BadImageError.
        what: the set, as the user named it (``DATASETS.PRETRAIN '/data/x'``).
        probes: images tried, spread evenly over the set; the first readable one ends the check.
    Raises:
        UnreadableDataError: none of them could be read (the first reason is given).
    """
    if num_images == 0:
        return
    indices = dict.fromkeys(round(i * (num_images - 1) / max(probes - 1, 1)) for i in range(probes))
    first = None
    for i in indices:
        try:
            load(i)
            return
        except BadImageError as e:
            first = first or e
    raise UnreadableDataError(
        f"{what}: none of {len(indices)} images tried (spread over its {num_images}) can be read, "
        f"e.g. {first}; check the path and DATASETS.IMAGE_ROOT"
    )


def read_image_size(path: str) -> tuple:
    """Size of the image at ``path`` from its header only (PIL opens lazily).

    Returns:
        (h, w) in pixels, upright (EXIF orientation applied).
    Raises:
        BadImageError: the file is missing, empty or not an image PIL recognises.
    """
    return read_image_header(path)[:2]


def read_image_header(path: str) -> tuple:
    """Upright size and EXIF orientation of the image at ``path``, from its header only.

    Returns:
        (h, w, orientation): orientation in 1..8, 1 when the file has none; pass it to
        :func:`read_image` to skip reading it again.
    Raises:
        BadImageError: the file is missing, empty or not an image PIL recognises.
    """
    try:
        if os.path.getsize(path) == 0:
            raise BadImageError(f"{path}: empty file (0 bytes)")
        with Image.open(path) as im:
            w, h = im.size
            orientation = _orientation(im, path)
            if orientation in _SWAPS_AXES:
                w, h = h, w
    except BadImageError:
        raise
    except FileNotFoundError:
        raise BadImageError(f"{path}: no such file") from None
    except Exception as e:  # PIL raises many types (OSError, SyntaxError, ValueError, ...)
        raise BadImageError(f"{path}: cannot read the image header ({_reason(e)})") from None
    if h <= 0 or w <= 0:
        raise BadImageError(f"{path}: header gives an empty size {w}x{h}")
    return h, w, orientation


def read_image(path: str, reduce: int = 1, orientation: int = None) -> np.ndarray:
    """Decode the image at ``path`` to RGB, optionally at 1/``reduce`` of its size.

    Grayscale, palette, RGBA (alpha dropped), 16-bit (scaled to 8 bit), CMYK, WebP and BMP files
    are converted. The file is only read, never written.

    Args:
        path: image file.
        reduce: 1, 2, 4 or 8. The result is about (ceil(h / reduce), ceil(w / reduce)); JPEG
            decoders give exactly that, other formats may round down, so callers map coordinates
            with the returned shape rather than assuming it.
        orientation: the file's EXIF orientation when the caller has it from
            :func:`read_image_header` (None reads it from the file).
    Returns:
        H x W x 3 uint8 RGB array, C-contiguous.
    Raises:
        BadImageError: missing, empty, truncated or non-image file.
    """
    if reduce not in _REDUCED_FLAGS:
        raise ValueError(f"reduce must be one of {tuple(_REDUCED_FLAGS)}, got {reduce}")
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except FileNotFoundError:
        raise BadImageError(f"{path}: no such file") from None
    except OSError as e:
        raise BadImageError(f"{path}: cannot read the file ({_reason(e)})") from None
    if data.size == 0:
        raise BadImageError(f"{path}: empty file (0 bytes)")
    if orientation is None:
        orientation = _orientation_of_bytes(data)
    # OpenCV's own orientation handling is off: it is applied below from the tag the header size
    # was computed with, the same for OpenCV and PIL decodes.
    bgr = cv2.imdecode(data, _REDUCED_FLAGS[reduce] | cv2.IMREAD_IGNORE_ORIENTATION)
    if bgr is not None and bgr.ndim == 3 and bgr.shape[0] > 0 and bgr.shape[1] > 0:
        return _upright(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), orientation)
    # OpenCV builds lack some codecs (and reject some CMYK or odd PNG variants); PIL decides then.
    return _upright(_read_with_pil(path, data, reduce), orientation)


# EXIF orientations (tag 0x0112) whose upright image has width and height swapped.
_SWAPS_AXES = (5, 6, 7, 8)


def _orientation(im: Image.Image, source) -> int:
    """The EXIF orientation of an opened image, 1 (as stored) when absent or unreadable.

    Args:
        im: the image, opened (not loaded).
        source: its path or its bytes, for PNG files (see :func:`_png_metadata_after_pixels`).
    """
    try:
        if im.format == "PNG" and not _png_metadata_after_pixels(source):
            # PIL's PNG getexif() decodes every pixel in case an eXIf chunk follows them; with
            # every metadata chunk before the pixels, open() has already read them all.
            exif = Image.Image.getexif(im)
        else:
            exif = im.getexif()
        value = int(exif.get(0x0112, 1))
    except Exception:  # a broken EXIF block only loses the orientation, never the image
        return 1
    return value if 1 <= value <= 8 else 1


# PNG chunks that can carry EXIF or XMP orientation (eXIf, or text chunks holding either).
_PNG_METADATA_CHUNKS = (b"eXIf", b"tEXt", b"zTXt", b"iTXt")


def _png_metadata_after_pixels(source) -> bool:
    """Whether a PNG file has an EXIF or text chunk after its first IDAT (pixel) chunk, which PIL
    reads only when it decodes the pixels. Walks the chunk headers without reading their data.

    Args:
        source: a path, or the file's bytes (bytes or a uint8 array).
    """
    if isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as f:
            return _png_late_metadata(lambda pos: (f.seek(pos), f.read(8))[1])
    data = memoryview(source).cast("B")
    return _png_late_metadata(lambda pos: bytes(data[pos : pos + 8]))


def _png_late_metadata(header_at) -> bool:
    pos, seen_pixels = 8, False  # after the 8-byte signature: length (4), type (4), data, CRC (4)
    while len(header := header_at(pos)) == 8:
        kind = header[4:]
        if kind == b"IDAT":
            seen_pixels = True
        elif kind == b"IEND":
            return False
        elif seen_pixels and kind in _PNG_METADATA_CHUNKS:
            return True
        pos += 12 + int.from_bytes(header[:4], "big")
    return False


def _orientation_of_bytes(data: np.ndarray) -> int:
    try:
        with Image.open(io.BytesIO(data)) as im:
            return _orientation(im, data)
    except Exception:  # PIL cannot parse the header: the decoder decides whether the file is bad
        return 1


def _upright(image: np.ndarray, orientation: int) -> np.ndarray:
    """Apply EXIF ``orientation`` to an H x W x 3 array (PIL's ``ImageOps.exif_transpose``)."""
    if orientation == 1:
        return image
    ops = {
        2: lambda a: a[:, ::-1],  # mirrored horizontally
        3: lambda a: a[::-1, ::-1],  # rotated 180
        4: lambda a: a[::-1],  # mirrored vertically
        5: lambda a: a.transpose(1, 0, 2),  # transposed
        6: lambda a: np.rot90(a, -1),  # stored rotated 90 counter-clockwise
        7: lambda a: a[::-1, ::-1].transpose(1, 0, 2),  # transverse
        8: lambda a: np.rot90(a, 1),  # stored rotated 90 clockwise
    }
    return np.ascontiguousarray(ops[orientation](image))


def _read_with_pil(path: str, data: np.ndarray, reduce: int) -> np.ndarray:
    try:
        with Image.open(io.BytesIO(data.tobytes())) as im:
            if reduce > 1:
                # JPEG only: PIL also scales in the IDCT; other formats ignore the hint.
                im.draft("RGB", (im.width // reduce, im.height // reduce))
            im.load()
            array = _pil_to_rgb(im)
    except Exception as e:
        raise BadImageError(f"{path}: cannot decode the image ({_reason(e)})") from None
    if reduce > 1:
        h, w = array.shape[:2]
        size = (math.ceil(w / reduce), math.ceil(h / reduce))
        if (w, h) != size and w >= size[0] and h >= size[1]:
            array = cv2.resize(array, size, interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(array)


def _pil_to_rgb(im: Image.Image) -> np.ndarray:
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        # Converting 16-bit to "RGB" in PIL clips at 255 instead of rescaling.
        wide = np.asarray(im).astype(np.int64)
        scale = 257.0 if wide.max(initial=0) > 255 else 1.0
        gray = np.clip(np.round(wide / scale), 0, 255).astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    # np.array, not np.asarray: a view of a PIL image is read-only, and callers paste into arrays.
    return np.array(im.convert("RGB"))


def _reason(e: BaseException) -> str:
    if isinstance(e, UnidentifiedImageError):
        return "not a recognised image format"
    text = " ".join(str(e).split())
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def choose_reduction(h: int, w: int, need_h: float, need_w: float) -> int:
    """Largest decode reduction that keeps at least the needed resolution.

    Args:
        h, w: full image size.
        need_h, need_w: the smallest reduced size that still has every pixel the caller needs.
    Returns:
        The largest f in (1, 2, 4, 8) with ceil(h / f) >= need_h and ceil(w / f) >= need_w
        (1 when even the full size is short: the caller then upsamples).
    """
    for f in (8, 4, 2):
        if math.ceil(h / f) >= need_h and math.ceil(w / f) >= need_w:
            return f
    return 1
