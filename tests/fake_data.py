"""Small datasets on disk for the tests of the tools' handling of files: COCO json, VOC folders,
image folders, with broken files where a test needs them."""

import json
import os

import cv2
import numpy as np


def write_image(path, height=64, width=80, seed=0):
    """A random RGB image of the given size (PNG or JPEG by the extension)."""
    rng = np.random.default_rng(seed)
    os.makedirs(os.path.dirname(str(path)), exist_ok=True)
    assert cv2.imwrite(str(path), rng.integers(0, 256, (height, width, 3), np.uint8))
    return path


def truncated_png(path, height=64, width=80):
    """A PNG whose header (and so its size) reads but whose pixel data is cut short."""
    write_image(path, height, width)
    data = open(path, "rb").read()
    open(path, "wb").write(data[: len(data) // 3])
    return path


def write_coco(root, n=3, size=(64, 80), bbox=None):
    """``root/ann.json`` and ``root/images/<i>.png`` (``file_name`` relative to ``root``): one
    category, one box per image.

    Returns the json path; ``bbox`` replaces every annotation's box when given.
    """
    images, anns = [], []
    for i in range(n):
        name = f"images/{i}.png"
        write_image(os.path.join(root, name), *size, seed=i)
        images.append({"id": i + 1, "file_name": name, "height": size[0], "width": size[1]})
        box = bbox if bbox is not None else [5.0 + i, 6.0, 30.0, 20.0]
        area = box[2] * box[3] if all(isinstance(v, (int, float)) for v in box) else 0
        anns.append(
            {"id": 100 + i, "image_id": i + 1, "category_id": 1, "bbox": box, "iscrowd": 0,
             "area": area}
        )  # fmt: skip
    data = {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "thing"}]}
    path = os.path.join(root, "ann.json")
    with open(path, "w") as f:
        json.dump(data, f)
    return path


def write_voc_2007_test(root, objects):
    """``root/VOC2007`` with a ``test`` split: ``objects`` is {image id: (height, width,
    [(class, xmin, ymin, xmax, ymax), ...])}, coordinates written to the XML as given."""
    voc = os.path.join(root, "VOC2007")
    os.makedirs(os.path.join(voc, "Annotations"), exist_ok=True)
    os.makedirs(os.path.join(voc, "ImageSets", "Main"), exist_ok=True)
    for image_id, (h, w, boxes) in objects.items():
        write_image(os.path.join(voc, "JPEGImages", f"{image_id}.jpg"), h, w)
        xml = "".join(
            f"<object><name>{c}</name><difficult>0</difficult><bndbox><xmin>{x1}</xmin>"
            f"<ymin>{y1}</ymin><xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox></object>"
            for c, x1, y1, x2, y2 in boxes
        )
        with open(os.path.join(voc, "Annotations", f"{image_id}.xml"), "w") as f:
            f.write(f"<annotation><size><width>{w}</width><height>{h}</height></size>{xml}"
                    "</annotation>")  # fmt: skip
    with open(os.path.join(voc, "ImageSets", "Main", "test.txt"), "w") as f:
        f.write("".join(f"{i}\n" for i in objects))
    return voc


def snapshot(folder):
    """{relative path: (size, mtime_ns, inode, bytes)} of every file under ``folder``: equal
    snapshots mean nothing was written, replaced or added."""
    out = {}
    for dirpath, _, files in os.walk(folder):
        for name in files:
            path = os.path.join(dirpath, name)
            st = os.stat(path)
            with open(path, "rb") as f:
                out[os.path.relpath(path, folder)] = (
                    st.st_size,
                    st.st_mtime_ns,
                    st.st_ino,
                    f.read(),
                )
    return out
