"""insloc.transfer.detectron2 with detectron2 itself; skipped where detectron2 is not installed."""

import json
import os

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("detectron2")

from detectron2.data.datasets import register_coco_instances  # noqa: E402
from detectron2.modeling import build_model  # noqa: E402

from insloc.transfer.detectron2 import check_weights, run_detectron2, setup_cfg  # noqa: E402

from .conftest import ROOT  # noqa: E402
from .test_detectron2_names import REFERENCE  # noqa: E402  (detectron2's names and shapes)

CONFIGS = os.path.join(ROOT, "configs", "detectron2")
# a narrow R50 (widths / 8) on 64-pixel images: the recipes' structure at test size
NARROW = [
    "MODEL.RESNETS.STEM_OUT_CHANNELS", 8, "MODEL.RESNETS.WIDTH_PER_GROUP", 8,
    "MODEL.RESNETS.RES2_OUT_CHANNELS", 32, "MODEL.FPN.OUT_CHANNELS", 16,
    "MODEL.ROI_BOX_HEAD.CONV_DIM", 16, "MODEL.ROI_BOX_HEAD.FC_DIM", 32,
    "MODEL.ROI_MASK_HEAD.CONV_DIM", 16, "MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE", 32,
    "MODEL.RPN.BATCH_SIZE_PER_IMAGE", 32, "MODEL.ROI_HEADS.NUM_CLASSES", 2,
    "INPUT.MIN_SIZE_TRAIN", (64,), "INPUT.MAX_SIZE_TRAIN", 96,
    "INPUT.MIN_SIZE_TEST", 64, "INPUT.MAX_SIZE_TEST", 96,
    "SOLVER.IMS_PER_BATCH", 2, "SOLVER.REFERENCE_WORLD_SIZE", 0, "SOLVER.BASE_LR", 0.001,
    "SOLVER.WARMUP_ITERS", 1, "SOLVER.STEPS", (), "DATALOADER.NUM_WORKERS", 0,
    "TEST.PRECISE_BN.NUM_ITER", 2, "MODEL.DEVICE", "cpu",
]  # fmt: skip


@pytest.mark.parametrize(
    "config, reference, extra_norm",
    [
        ("voc_faster_rcnn_R50_C4_24k", "faster_rcnn_R50_C4_voc", "roi_heads.res5.norm."),
        ("coco_mask_rcnn_R50_C4_1x", "mask_rcnn_R50_C4_coco", "roi_heads.res5.norm."),
        (
            "coco_mask_rcnn_R50_FPN_1x",
            "mask_rcnn_R50_FPN_4conv1fc_coco",
            "roi_heads.box_head.fc_extra_norm.",
        ),
    ],
)
def test_protocol_configs_build_the_reference_models_plus_the_extra_norm(
    config, reference, extra_norm
):
    path = os.path.join(REFERENCE, reference + ".json")
    if not os.path.isfile(path):
        pytest.skip(f"{path} not found (set INSLOC_D2_REFERENCE)")
    with open(path) as f:
        expected = json.load(f)["state_dict"]
    model = build_model(setup_cfg(os.path.join(CONFIGS, config + ".yaml")))
    shapes = {k: list(v.shape) for k, v in model.state_dict().items()}
    extra = {k: s for k, s in shapes.items() if k not in expected}
    assert {k: s for k, s in shapes.items() if k in expected} == expected
    assert sorted(extra) == sorted(
        extra_norm + n for n in ("weight", "bias", "running_mean", "running_var",
                                 "num_batches_tracked")
    )  # fmt: skip


def test_extra_norms_act_where_the_published_heads_put_them():
    cfg = setup_cfg(os.path.join(CONFIGS, "coco_mask_rcnn_R50_FPN_1x.yaml"), NARROW)
    torch.manual_seed(0)
    head = build_model(cfg).roi_heads.box_head.eval()
    norm = head.fc_extra_norm
    norm.running_mean.uniform_(-1, 1)
    norm.running_var.uniform_(0.5, 2)
    norm.weight.data.uniform_(0.5, 2)
    x = torch.randn(3, 16, 7, 7)
    with torch.no_grad():
        features = torch.relu(
            head.fc1(head.flatten(head.conv4(head.conv3(head.conv2(head.conv1(x))))))
        )
        expected = (features - norm.running_mean) / torch.sqrt(norm.running_var + norm.eps)
        assert torch.allclose(head(x), expected * norm.weight + norm.bias, atol=1e-5)

    c4 = build_model(setup_cfg(os.path.join(CONFIGS, "coco_mask_rcnn_R50_C4_1x.yaml"), NARROW))
    assert list(c4.roi_heads.res5)[-1] is c4.roi_heads.res5.norm
    assert isinstance(c4.roi_heads.res5.norm, torch.nn.BatchNorm2d)


def _tiny_coco(folder, num_images=4, size=64):
    """Images with one or two filled rectangles each, their boxes and polygons as a COCO json."""
    rng = np.random.default_rng(0)
    images, annotations = [], []
    for i in range(num_images):
        pixels = np.full((size, size, 3), 40, np.uint8)
        for j in range(1 + i % 2):
            x, y = rng.integers(4, size // 2, 2)
            w, h = rng.integers(12, size // 2 - 4, 2)
            pixels[y : y + h, x : x + w] = (200, 60, 60) if j == 0 else (60, 200, 60)
            polygon = [x, y, x + w, y, x + w, y + h, x, y + h]
            annotations.append(
                {"id": len(annotations) + 1, "image_id": i + 1, "category_id": j + 1,
                 "bbox": [int(x), int(y), int(w), int(h)], "area": int(w * h), "iscrowd": 0,
                 "segmentation": [[int(v) for v in polygon]]}
            )  # fmt: skip
        name = f"{i}.png"
        Image.fromarray(pixels).save(os.path.join(folder, name))
        images.append({"id": i + 1, "file_name": name, "height": size, "width": size})
    categories = [{"id": 1, "name": "red"}, {"id": 2, "name": "green"}]
    path = os.path.join(folder, "instances.json")
    with open(path, "w") as f:
        json.dump({"images": images, "annotations": annotations, "categories": categories}, f)
    return path


def test_run_detectron2_trains_evaluates_and_reloads(tmp_path):
    name = f"insloc_tiny_{os.getpid()}_{tmp_path.name}"
    register_coco_instances(name, {}, _tiny_coco(str(tmp_path)), str(tmp_path))
    out = tmp_path / "run"
    opts = NARROW + [
        "DATASETS.TRAIN", (name,), "DATASETS.TEST", (name,), "SOLVER.MAX_ITER", 3,
        "SOLVER.CHECKPOINT_PERIOD", 100, "OUTPUT_DIR", str(out),
    ]  # fmt: skip
    config = os.path.join(CONFIGS, "coco_mask_rcnn_R50_FPN_1x.yaml")
    results = run_detectron2(config, opts, num_gpus=1)
    assert set(results) == {name} and {"bbox", "segm"} <= set(results[name])
    with open(out / "results.json") as f:
        assert json.load(f) == json.loads(json.dumps(results))
    assert (out / "model_final.pth").is_file()
    assert (out / "inference" / name / "coco_instances_results.json").is_file()

    # --eval-only --resume evaluates the final checkpoint (precise BN statistics included)
    again = run_detectron2(config, opts, eval_only=True, resume=True, num_gpus=1)
    for task in ("bbox", "segm"):
        for k, v in results[name][task].items():
            assert v == pytest.approx(again[name][task][k], nan_ok=True), (task, k)


def test_insloc_checkpoints_are_refused_with_the_export_command(tmp_path):
    from insloc.utils.file_io import atomic_save

    path = str(tmp_path / "model_final.pth")
    atomic_save({"model": {"encoder_q.backbone.conv1.weight": torch.zeros(1)}}, path)
    with pytest.raises(
        ValueError, match="convert_checkpoint.py .*model_final.pth .*--to detectron2"
    ):
        check_weights(path)
    other = str(tmp_path / "d2.pth")  # detectron2's own names: detectron2 reads it
    atomic_save({"model": {"backbone.stem.conv1.weight": torch.zeros(1)}}, other)
    check_weights(other)
    with pytest.raises(FileNotFoundError, match="absent.pkl"):
        check_weights(str(tmp_path / "absent.pkl"))
