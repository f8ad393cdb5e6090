"""PASCAL VOC detection: ImageSets split files, XML annotations with difficult flags.

Coordinates follow detectron2's VOC loader: XML ``xmin``/``ymin`` minus 1 (VOC counts pixels from
1), ``xmax``/``ymax`` as they are, so the records and detectron2's agree box for box. Training
annotations are clipped to the image (the shared rule of ``annotations.py``); every object also
stays in ``voc_objects`` as the XML states it, the ground truth the evaluator scores against (as
the official devkit and detectron2 do).
"""

import os
import xml.etree.ElementTree as ET

from .annotations import LoadCounts, clip_box

__all__ = ["VOC_CLASSES", "load_voc_instances"]

# The 20 classes in VOC's order (category_id i is VOC_CLASSES[i]).
VOC_CLASSES = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train",
    "tvmonitor",
)  # fmt: skip

VOC_LAYOUT = "{Annotations/<id>.xml, ImageSets/Main/<split>.txt, JPEGImages/<id>.jpg}"


def _text(node, path: str, xml_file: str) -> str:
    found = node.find(path)
    if found is None or found.text is None:
        raise ValueError(f"{xml_file}: missing <{path}>")
    return found.text.strip()


def _number(node, path: str, xml_file: str) -> float:
    text = _text(node, path, xml_file)
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{xml_file}: <{path}> is {text!r}, expected a number") from None


def load_voc_instances(dirname: str, split: str, year: int, class_names=VOC_CLASSES, name=""):
    """Records of one VOC split.

    Args:
        dirname: the VOC root, e.g. ``datasets/VOC2007``.
        split: name of the ``ImageSets/Main/<split>.txt`` file (``trainval``, ``test``, ...).
        year: 2007 or 2012 (the evaluator's 11-point rule depends on it).
        class_names: class names in category-id order.
        name: the dataset's name, for the log.
    Returns:
        (records, metadata) in the format of insloc.data.detection: every object is kept, with
        ``difficult`` 0/1 (the evaluator needs them; training drops them by config).
    Raises:
        FileNotFoundError: the split file or an annotation file is missing.
        ValueError: an XML file is malformed or names a class outside ``class_names``.
    """
    split_file = os.path.join(dirname, "ImageSets", "Main", f"{split}.txt")
    if not os.path.isfile(split_file):
        raise FileNotFoundError(
            f"{split_file} not found: expected a VOC folder {dirname}/{VOC_LAYOUT}"
        )
    with open(split_file) as f:
        file_ids = [line.strip() for line in f if line.strip()]
    class_index = {c: i for i, c in enumerate(class_names)}
    counts = LoadCounts()
    records = []
    for file_id in file_ids:
        jpeg_file = os.path.join(dirname, "JPEGImages", f"{file_id}.jpg")
        if not os.path.isfile(jpeg_file):
            counts.add_missing_image(jpeg_file)
            continue
        xml_file = os.path.join(dirname, "Annotations", f"{file_id}.xml")
        if not os.path.isfile(xml_file):
            raise FileNotFoundError(f"{xml_file}: annotation of {file_id!r} ({split_file}) missing")
        try:
            root = ET.parse(xml_file).getroot()
        except ET.ParseError as e:
            raise ValueError(f"{xml_file}: not valid XML ({e})") from None
        height = int(_number(root, "size/height", xml_file))
        width = int(_number(root, "size/width", xml_file))
        annotations, as_written = [], []
        for obj in root.findall("object"):
            cls = _text(obj, "name", xml_file)
            if cls not in class_index:
                raise ValueError(
                    f"{xml_file}: unknown class name {cls!r} (expected one of the "
                    f"{len(class_names)} VOC classes)"
                )
            difficult = obj.find("difficult")
            difficult = int(difficult.text) if difficult is not None and difficult.text else 0
            box = [_number(obj, f"bndbox/{k}", xml_file) for k in ("xmin", "ymin", "xmax", "ymax")]
            as_written.append(
                {"bbox": list(box), "category_id": class_index[cls], "difficult": int(difficult)}
            )
            box[0] -= 1.0
            box[1] -= 1.0
            box, outcome = clip_box(box, height, width)
            counts.add(outcome)
            if box is None:
                continue
            annotations.append(
                {
                    "bbox": box,
                    "category_id": class_index[cls],
                    "iscrowd": 0,
                    "difficult": 1 if difficult else 0,
                }
            )
        records.append(
            {
                "file_name": jpeg_file,
                "image_id": file_id,
                "height": height,
                "width": width,
                "annotations": annotations,
                "voc_objects": as_written,
            }
        )
    counts.log(name or f"{dirname}:{split}", records)
    metadata = {
        "thing_classes": list(class_names),
        "evaluator": "voc",
        "json_file": None,
        "year": int(year),
        "dirname": dirname,
        "split": split,
        "missing_images": counts.missing_images,
    }
    return records, metadata
