#!/usr/bin/env python
"""Detection evaluation cost: how long the evaluators take on test sets of real size.

    python benchmarks/bench_eval.py [--coco-json ../shared/data/coco128/annotations/...json]

1. VOC: a test set the size of VOC 2007 test (4952 images, 20 classes, about 12,400 boxes, 10%
   difficult) with 100 detections per image (jittered copies of the boxes and random boxes, seeded):
   the time of ``process`` over all images and of ``evaluate`` (10 IoU thresholds x 20 classes).
2. COCO: a real COCO annotation file with detections made from its own boxes and masks (jittered
   boxes, masks shifted by 2 px): ``process`` (RLE encoding) and ``evaluate`` (pycocotools bbox and
   segm), with the APs as a sanity check, and whether the ground truth built in memory from
   records gives the same numbers as the json file.
Nothing here is asserted: the figures are for docs/benchmarks.md.
"""

import argparse
import os
import time

import numpy as np
import torch

from insloc.evaluation import COCOEvaluator, PascalVOCDetectionEvaluator

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COCO128 = os.path.join(ROOT, "..", "shared", "data", "coco128", "annotations")


def voc_like(num_images: int, num_classes: int, dets_per_image: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    records, outputs = [], []
    for i in range(num_images):
        n = int(rng.integers(1, 5))
        xy = rng.uniform(0, 300, (n, 2))
        gt = np.concatenate([xy, xy + rng.uniform(10, 200, (n, 2))], axis=1)  # n x 4
        classes = rng.integers(0, num_classes, n)
        records.append(
            {"file_name": f"{i:06d}.jpg", "image_id": f"{i:06d}", "height": 500, "width": 500,
             "annotations": [{"bbox": b.tolist(), "category_id": int(c),
                              "difficult": int(rng.random() < 0.1)} for b, c in zip(gt, classes)]}
        )  # fmt: skip
        near = gt[rng.integers(0, n, dets_per_image // 2)]
        near = near + rng.normal(0, 4, near.shape)
        far = rng.uniform(0, 400, (dets_per_image - len(near), 2))
        far = np.concatenate([far, far + rng.uniform(5, 100, far.shape)], axis=1)
        boxes = np.concatenate([near, far])
        det_classes = np.concatenate([classes[rng.integers(0, n, len(near))],
                                      rng.integers(0, num_classes, len(far))])  # fmt: skip
        outputs.append(
            {"boxes": torch.tensor(boxes, dtype=torch.float32),
             "scores": torch.tensor(rng.random(len(boxes)), dtype=torch.float32),
             "classes": torch.tensor(det_classes, dtype=torch.int64)}
        )  # fmt: skip
    return records, outputs


def coco_like(json_file: str, seed: int = 0):
    """Metadata, a function making (sample, output) pairs one image at a time, the records."""
    from pycocotools.coco import COCO

    gt = COCO(json_file)
    cat_ids = sorted(gt.getCatIds())
    meta = {
        "thing_classes": [gt.cats[c]["name"] for c in cat_ids],
        "evaluator": "coco",
        "json_file": json_file,
        "thing_dataset_id_to_contiguous_id": {c: i for i, c in enumerate(cat_ids)},
    }

    def pairs():
        rng = np.random.default_rng(seed)
        for img in gt.dataset["images"]:
            anns = [a for a in gt.imgToAnns[img["id"]] if not a["iscrowd"]]
            xywh = np.array([a["bbox"] for a in anns], dtype=np.float64).reshape(-1, 4)
            boxes = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)
            boxes = boxes + rng.normal(0, 2, boxes.shape)
            masks = np.zeros((len(anns), img["height"], img["width"]), dtype=bool)
            for k, a in enumerate(anns):
                masks[k] = np.roll(gt.annToMask(a).astype(bool), 2, axis=1)
            classes = [meta["thing_dataset_id_to_contiguous_id"][a["category_id"]] for a in anns]
            sample = {"image_id": img["id"], "height": img["height"], "width": img["width"]}
            yield sample, {
                "boxes": torch.tensor(boxes, dtype=torch.float32),
                "scores": torch.tensor(rng.random(len(anns)), dtype=torch.float32),
                "classes": torch.tensor(classes, dtype=torch.int64),
                "masks": torch.from_numpy(masks),
            }

    return meta, pairs, _records(gt, meta)


def _records(gt, meta: dict) -> list:
    """The json as dataset records (XYXY boxes, contiguous classes), for the in-memory route."""
    to_contiguous = meta["thing_dataset_id_to_contiguous_id"]
    records = []
    for img in gt.dataset["images"]:
        anns = []
        for a in gt.imgToAnns[img["id"]]:
            x, y, w, h = a["bbox"]
            anns.append(
                {"bbox": [x, y, x + w, y + h], "category_id": to_contiguous[a["category_id"]],
                 "iscrowd": a["iscrowd"], "segmentation": a["segmentation"]}
            )  # fmt: skip
        records.append(dict(img, image_id=img["id"], annotations=anns))
    return records


def timed(evaluator, pairs):
    """Seconds spent in ``process`` (making the inputs not counted) and in ``evaluate``."""
    evaluator.reset()
    t_process, count = 0.0, 0
    for sample, output in pairs:
        tic = time.perf_counter()
        evaluator.process([sample], [output])
        t_process += time.perf_counter() - tic
        count += len(output["scores"])
    tic = time.perf_counter()
    results = evaluator.evaluate()
    return t_process, time.perf_counter() - tic, results, count


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--coco-json", default=os.path.join(COCO128, "instances_train2017.json"),
        help="a COCO instances json (default: the 128 real COCO images of ../shared/data)",
    )  # fmt: skip
    parser.add_argument("--voc-images", type=int, default=4952, help="VOC 2007 test has 4952")
    args = parser.parse_args()

    records, outputs = voc_like(args.voc_images, 20, 100)
    samples = [{"image_id": r["image_id"], "height": 500, "width": 500} for r in records]
    meta = {"thing_classes": [f"class{c}" for c in range(20)], "year": 2007}
    voc = PascalVOCDetectionEvaluator("voc_like", records, meta)
    t_proc, t_eval, res, _ = timed(voc, zip(samples, outputs))
    print(f"VOC07-size: {len(records)} images, {100 * len(records)} detections, "
          f"{sum(len(r['annotations']) for r in records)} boxes")  # fmt: skip
    print(f"  process {t_proc:.1f} s, evaluate {t_eval:.1f} s (AP {res['bbox']['AP']:.1f})")

    meta, make_pairs, records = coco_like(args.coco_json)
    coco = COCOEvaluator("coco_like", meta)
    t_proc, t_eval, res, num_dets = timed(coco, make_pairs())
    in_memory = COCOEvaluator("coco_like", dict(meta, json_file=None), records=records)
    res_mem = timed(in_memory, make_pairs())[2]  # the same seeded detections
    num_images = len(coco.coco_gt.getImgIds())
    print(f"COCO ({os.path.basename(args.coco_json)}): {num_images} images, {num_dets} detections")
    print(
        f"  process {t_proc:.1f} s (mask RLE), evaluate {t_eval:.1f} s (bbox + segm); "
        f"bbox AP {res['bbox']['AP']:.1f}, segm AP {res['segm']['AP']:.1f}"
    )
    keys = ("AP", "AP50", "AP75", "APs", "APm", "APl")
    for task in res:
        same = all(res[task][k] == res_mem[task][k] for k in keys)
        print(f"  {task}: ground truth from the json vs built from records: "
              f"{'identical' if same else 'DIFFERENT'} {', '.join(keys)}")  # fmt: skip


if __name__ == "__main__":
    main()
