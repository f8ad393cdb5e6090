import json
import logging
import os

import cv2
import numpy as np
import pytest
from PIL import Image

from insloc.data.build import build_image_source
from insloc.data.datasets import InsLocPretrainDataset, TwoCropDataset
from insloc.data.image_io import (
    BadImageError,
    UnreadableDataError,
    choose_reduction,
    read_image,
    read_image_size,
)
from insloc.data.sources import FileImageSource, SyntheticSource


def _rgb(h=24, w=32, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=(h, w, 3), dtype=np.uint8)


def _write(path, image=None):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(_rgb() if image is None else image).save(path)


def test_folder_tree_mixed_case_sorted(tmp_path):
    root = str(tmp_path)
    for rel in ("b/x2.JPEG", "a/x1.jpg", "a/deep/z.Png", "c.BMP", "d.webp", "a/notes.txt"):
        if rel.endswith(".txt"):
            open(os.path.join(root, rel), "w").write("not an image")
        else:
            _write(os.path.join(root, rel))
    src = build_image_source(root)
    names = [os.path.relpath(src.name(i), root) for i in range(len(src))]
    assert names == sorted(["b/x2.JPEG", "a/x1.jpg", "a/deep/z.Png", "c.BMP", "d.webp"])
    assert src.size(0) == (24, 32)
    assert src.load(0).shape == (24, 32, 3)


def test_coco_json_and_txt_list(tmp_path):
    root = str(tmp_path)
    for name in ("one.jpg", "two.png"):
        _write(os.path.join(root, "imgs", name))
    coco = os.path.join(root, "ann.json")
    json.dump(
        {"images": [{"id": 1, "file_name": "imgs/one.jpg"}, {"file_name": "imgs/two.png"}]},
        open(coco, "w"),
    )
    src = build_image_source(coco)
    assert len(src) == 2 and src.name(1) == os.path.join(root, "imgs/two.png")
    assert src.load(1).shape == (24, 32, 3)
    other = build_image_source(coco, image_root=os.path.join(root, "elsewhere"))
    assert other.name(0) == os.path.join(root, "elsewhere", "imgs/one.jpg")

    listing = os.path.join(root, "imgs", "list.txt")
    open(listing, "w").write(
        "# images\n\none.jpg\n  two.png  \n" + os.path.join(root, "imgs/one.jpg")
    )
    src = build_image_source(listing)
    assert [src.name(i) for i in range(3)] == [
        os.path.join(root, "imgs", "one.jpg"),
        os.path.join(root, "imgs", "two.png"),
        os.path.join(root, "imgs", "one.jpg"),
    ]


def test_missing_and_empty_sources(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope"):
        build_image_source(str(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="empty.*no images"):
        build_image_source(str(tmp_path / "empty"))
    (tmp_path / "l.txt").write_text("# nothing\n\n")
    with pytest.raises(ValueError, match="l.txt"):
        build_image_source(str(tmp_path / "l.txt"))
    (tmp_path / "c.json").write_text(json.dumps({"images": []}))
    with pytest.raises(ValueError, match="c.json.*images"):
        build_image_source(str(tmp_path / "c.json"))
    (tmp_path / "x.csv").write_text("a")
    with pytest.raises(ValueError, match="expected a folder"):
        build_image_source(str(tmp_path / "x.csv"))


def test_synthetic_source():
    src = build_image_source("synthetic", synthetic=dict(num_images=3, image_size=40, seed=1))
    assert isinstance(src, SyntheticSource) and len(src) == 3 and src.name(2) == "synthetic:2"
    assert src.load(1).shape == (40, 40, 3) and src.load(1, reduce=4).shape == (10, 10, 3)


def _write_broken_folder(folder):
    """Readable odd formats (good_*) and unreadable files (bad_*)."""
    os.makedirs(folder)
    img = _rgb(30, 40)
    p = lambda name: os.path.join(folder, name)  # noqa: E731
    Image.fromarray(img).save(p("good_rgb.jpg"))
    Image.fromarray(img).convert("CMYK").save(p("good_cmyk.jpg"))
    cv2.imwrite(p("good_16bit.png"), img.astype(np.uint16) * 257)
    Image.fromarray(img).convert("L").save(p("good_gray.png"))
    Image.fromarray(img).convert("P").save(p("good_palette.png"))
    Image.fromarray(np.dstack([img, img[:, :, :1]])).save(p("good_rgba.png"))
    open(p("bad_zero.jpg"), "wb").close()
    open(p("bad_text.jpg"), "w").write("this is not a jpeg")
    Image.fromarray(img).save(p("full.png"))
    data = open(p("full.png"), "rb").read()
    open(p("bad_truncated.png"), "wb").write(data[: len(data) // 2])
    os.remove(p("full.png"))
    Image.fromarray(img).save(p("full.jpg"))
    data = open(p("full.jpg"), "rb").read()
    open(p("maybe_truncated.jpg"), "wb").write(data[: len(data) // 2])
    os.remove(p("full.jpg"))


def test_broken_and_odd_images(tmp_path, caplog):
    folder = str(tmp_path / "mixed")
    _write_broken_folder(folder)
    before = {
        f: (open(os.path.join(folder, f), "rb").read(), os.stat(os.path.join(folder, f)))
        for f in os.listdir(folder)
    }
    for f in sorted(before):
        path = os.path.join(folder, f)
        if f.startswith("good"):
            for reduce in (1, 2):
                image = read_image(path, reduce)
                assert image.dtype == np.uint8 and image.flags.c_contiguous
                assert image.shape[2] == 3 and abs(image.shape[0] - 30 / reduce) <= 1
            assert read_image_size(path) == (30, 40)
        elif f.startswith("bad"):
            with pytest.raises(BadImageError, match=f):
                read_image(path)
    gray = read_image(os.path.join(folder, "good_16bit.png"))
    assert abs(int(gray.astype(int).mean()) - int(_rgb(30, 40).mean())) <= 2  # 16 -> 8 bit scaled

    src = FileImageSource.from_folder(folder)
    bad_names = {os.path.join(folder, f) for f in before if f.startswith("bad")}
    good = [i for i in range(len(src)) if os.path.basename(src.name(i)).startswith("good")]
    bad = [i for i in range(len(src)) if src.name(i) in bad_names]
    common = dict(paste_size=(16, 48), query_aug_levels=[True], key_aug_levels=[False], seed=0)
    insloc = InsLocPretrainDataset(src, canvas_size=64, **common)
    moco = TwoCropDataset(src, crop_size=32)
    with caplog.at_level(logging.WARNING, logger="insloc.data"):
        for index in bad:
            for ds in (insloc, moco):
                for epoch in range(2):
                    s = ds[(epoch, index)]
                    assert src.name(index) in s["bad_files"] and s["index"] != index
                    assert not any("good_" in name for name in s["bad_files"])
                    assert s["q"].shape[1:] in ((64, 64), (32, 32))
        for index in good:
            assert insloc[(0, index)]["index"] == index  # a readable foreground is kept
    warned = [r.getMessage() for r in caplog.records]
    for name in bad_names:
        assert sum(name in m for m in warned) == 1, "each bad file is logged exactly once"
    for f, (data, st) in before.items():
        path = os.path.join(folder, f)
        assert open(path, "rb").read() == data and os.stat(path).st_mtime_ns == st.st_mtime_ns


def test_all_bad_source_raises(tmp_path):
    for i in range(3):
        (tmp_path / f"{i}.jpg").write_bytes(b"")
    ds = TwoCropDataset(FileImageSource.from_folder(str(tmp_path)), crop_size=16)
    with pytest.raises(UnreadableDataError, match=str(tmp_path)):
        ds[(0, 0)]


def test_choose_reduction():
    assert choose_reduction(1000, 800, 100, 100) == 8
    assert choose_reduction(1000, 800, 126, 100) == 4  # ceil(1000 / 8) = 125 < 126
    assert choose_reduction(1000, 800, 250, 200) == 4
    assert choose_reduction(1000, 800, 251, 100) == 2
    assert choose_reduction(100, 100, 90, 10) == 1
    assert choose_reduction(10, 10, 40, 40) == 1


def test_decoded_arrays_are_writable(tmp_path, monkeypatch):
    # The PIL fallback (OpenCV failing) must not hand out np.asarray's read-only view.
    path = str(tmp_path / "a.png")
    _write(path, _rgb(20, 30))
    fail_decode = lambda data, flags: None  # noqa: E731
    for reduce in (1, 2):
        assert read_image(path, reduce).flags.writeable
    monkeypatch.setattr(cv2, "imdecode", fail_decode)
    for reduce in (1, 2):
        image = read_image(path, reduce)
        assert image.flags.writeable and image.shape[2] == 3
    np.testing.assert_array_equal(read_image(path), _rgb(20, 30))


def _exif(orientation):
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif


def test_exif_orientation_applied_to_size_and_pixels(tmp_path, monkeypatch):
    from PIL import ImageOps

    image = _rgb(20, 30)
    for orientation in range(1, 9):  # lossless PNG: exact against PIL's exif_transpose
        path = str(tmp_path / f"o{orientation}.png")
        Image.fromarray(image).save(path, exif=_exif(orientation))
        expected = np.asarray(ImageOps.exif_transpose(Image.open(path)).convert("RGB"))
        assert read_image_size(path) == expected.shape[:2]
        np.testing.assert_array_equal(read_image(path), expected)
    # A phone JPEG stored sideways (orientation 6): upright at full and reduced decode sizes.
    yy, xx = np.mgrid[0:160, 0:240]
    smooth = np.dstack([xx, yy, np.full_like(xx, 128)]).astype(np.uint8)  # 160 x 240
    path = str(tmp_path / "phone.jpg")
    Image.fromarray(smooth).save(path, exif=_exif(6), quality=95)
    assert read_image_size(path) == (240, 160)
    upright = np.rot90(smooth, -1).astype(int)  # what the camera saw: 240 x 160
    for reduce in (1, 2, 4):
        decoded = read_image(path, reduce)
        assert decoded.shape == (240 // reduce, 160 // reduce, 3)
        size = decoded.shape[1::-1]
        small = cv2.resize(upright.astype(np.uint8), size, interpolation=cv2.INTER_AREA)
        assert np.abs(decoded.astype(int) - small.astype(int)).mean() < 4
    # The PIL fallback (OpenCV failing) applies it too.
    monkeypatch.setattr(cv2, "imdecode", lambda data, flags: None)
    path = str(tmp_path / "o6.png")
    expected = np.asarray(ImageOps.exif_transpose(Image.open(path)).convert("RGB"))
    np.testing.assert_array_equal(read_image(path), expected)


def _png_chunks(data: bytes) -> list:
    chunks, pos = [], 8
    while pos < len(data):
        length = int.from_bytes(data[pos : pos + 4], "big")
        chunks.append(data[pos : pos + 12 + length])
        pos += 12 + length
    return chunks


def test_png_orientation_read_without_decoding_pixels(tmp_path, monkeypatch):
    """PIL's PNG getexif() decodes every pixel; the header read must not (a PNG decode per image
    per header, three per InsLoc sample), yet an eXIf chunk after the pixels still counts."""
    from PIL import ImageOps, PngImagePlugin

    image = _rgb(20, 30)
    early = str(tmp_path / "early.png")  # PIL writes eXIf before the IDAT chunks
    Image.fromarray(image).save(early, exif=_exif(6))
    chunks = _png_chunks(open(early, "rb").read())
    exif = next(c for c in chunks if c[4:8] == b"eXIf")
    rest = [c for c in chunks if c is not exif]
    late = str(tmp_path / "late.png")  # the same chunk moved between the last IDAT and IEND
    with open(late, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + b"".join(rest[:-1]) + exif + rest[-1])
    for path in (early, late):
        expected = np.asarray(ImageOps.exif_transpose(Image.open(path)).convert("RGB"))
        assert expected.shape[:2] == (30, 20)
        assert read_image_size(path) == (30, 20)
        np.testing.assert_array_equal(read_image(path), expected)

    def no_decode(self):
        raise AssertionError("pixels decoded to read a header")

    monkeypatch.setattr(PngImagePlugin.PngImageFile, "load", no_decode)
    assert read_image_size(early) == (30, 20)
    assert read_image(early).shape == (30, 20, 3)


def test_file_source_reads_each_header_once(tmp_path, monkeypatch):
    from insloc.data import image_io

    Image.fromarray(_rgb(20, 30)).save(tmp_path / "a.png", exif=_exif(6))
    source = FileImageSource.from_folder(str(tmp_path))
    calls = []
    real = image_io.read_image_header
    monkeypatch.setattr(
        "insloc.data.sources.read_image_header", lambda p: calls.append(p) or real(p)
    )
    assert source.size(0) == source.size(0) == (30, 20)
    assert len(calls) == 1
    assert source.load(0).shape == (30, 20, 3)  # the orientation read with the size applies
