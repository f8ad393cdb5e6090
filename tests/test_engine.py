"""End-to-end runs of tools/pretrain_net.py on the quick configs (tiny networks, CPU)."""

import json
import logging
import math
import os
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest
import torch

from insloc.config import load_config
from insloc.engine.optim import WarmupLR, scaled_lr, schedule_in_iterations
from insloc.transfer.weight_file import load_checkpoint
from insloc.utils.file_io import atomic_save

from .conftest import ROOT

FPN = "configs/quick/insloc_tiny_FPN.yaml"


def pretrain(out, *opts, config=FPN, resume=False):
    args = ["tools/pretrain_net.py", "--config-file", config]
    if resume:
        args.append("--resume")
    return [*args, "OUTPUT_DIR", str(out), *map(str, opts)]


def final_state(out):
    return load_checkpoint(os.path.join(out, "model_final.pth"))


@pytest.mark.parametrize(
    "config", [FPN, "configs/quick/insloc_tiny_C4.yaml", "configs/quick/moco_v2_tiny.yaml"]
)
def test_quick_configs_run_end_to_end(tool, tmp_path, config):
    out = tmp_path / "run"
    tool(*pretrain(out, config=config), check=True)
    for name in (
        "config.yaml",
        "metrics.jsonl",
        "model_final.pth",
        "model_0000001.pth",
        "last_checkpoint",
        "composites.png",
        "log.txt",
        "tensorboard",
    ):
        assert (out / name).exists(), name
    assert (out / "last_checkpoint").read_text().strip() == "model_final.pth"
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in records] == [1, 2, 3, 4]
    levels = (
        ["res4"] if "C4" in config else ["global"] if "moco" in config else ["p2", "p3", "p4", "p5"]
    )
    for r in records:
        for level in levels:
            assert math.isfinite(r[f"loss_{level}"]) and 0 <= r[f"acc_{level}"] <= 1
        assert r["lr"] >= 0 and r["images_per_sec"] > 0 and r["data_time"] >= 0
        assert r["num_bad_images"] == 0 and type(r["num_bad_images"]) is int
    assert records[0]["lr"] > records[-1]["lr"]  # cosine decay
    ckpt = final_state(out)
    assert ckpt["iteration"] == 4 and ckpt["meta_arch"] in ("InsLoc", "MoCo")
    assert load_config(str(out / "config.yaml")).SOLVER.MAX_ITER == 4
    # the cosine schedule ends at 0 after MAX_ITER steps
    assert ckpt["scheduler"]["_last_lr"][0] == pytest.approx(0.0, abs=1e-12)


def test_refuses_to_overwrite_and_resume_checks_architecture(tool, tmp_path):
    out = tmp_path / "run"
    tool(*pretrain(out, "SOLVER.MAX_ITER", 2), check=True)
    before = (out / "model_final.pth").read_bytes()
    proc = tool(*pretrain(out, "SOLVER.MAX_ITER", 2))
    assert proc.returncode == 2 and "already holds" in proc.stderr
    assert "--resume" in proc.stderr and "Traceback" not in proc.stderr
    proc = tool(*pretrain(out, config="configs/quick/insloc_tiny_C4.yaml", resume=True))
    assert proc.returncode == 2 and "MODEL.BACKBONE.NAME" in proc.stderr
    assert "resnet_fpn" in proc.stderr and "resnet_c4" in proc.stderr
    assert (out / "model_final.pth").read_bytes() == before


def test_missing_image_source_names_the_path(tool, tmp_path):
    missing = tmp_path / "no_such_folder"
    proc = tool(*pretrain(tmp_path / "run", "DATASETS.PRETRAIN", missing))
    assert proc.returncode == 2 and str(missing) in proc.stderr and "Traceback" not in proc.stderr


def test_non_finite_loss_stops_with_the_iteration(tool, tmp_path):
    proc = tool(*pretrain(tmp_path / "run", "SOLVER.BASE_LR", 1e30, "SOLVER.MAX_ITER", 6))
    assert proc.returncode == 1
    assert "non-finite at iteration" in proc.stdout + proc.stderr


def _wait_for(path, proc, timeout=120):
    start = time.time()
    while not os.path.exists(path):
        assert proc.poll() is None, "the run ended before it could be killed"
        assert time.time() - start < timeout
        time.sleep(0.02)


def test_resume_after_sigkill_is_bit_exact(tool, tmp_path):
    opts = [
        "SOLVER.MAX_ITER",
        12,
        "SOLVER.CHECKPOINT_PERIOD",
        3,
        "DATALOADER.NUM_WORKERS",
        2,
        "VIS_SAMPLES",
        0,
    ]
    tool(*pretrain(tmp_path / "ref", *opts), check=True)

    killed = tmp_path / "killed"
    proc = subprocess.Popen(
        [sys.executable, *pretrain(killed, *opts)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    _wait_for(killed / "model_0000005.pth", proc)
    os.killpg(proc.pid, signal.SIGKILL)  # the trainer and its data workers, mid-run
    proc.wait()
    assert not (killed / "model_final.pth").exists()
    resumed = tool(*pretrain(killed, *opts, resume=True), check=True)
    assert "resumed from" in resumed.stdout

    ref, res = final_state(tmp_path / "ref"), final_state(killed)
    assert ref["model"].keys() == res["model"].keys()
    for k in ref["model"]:
        assert torch.equal(ref["model"][k], res["model"][k]), k
    for a, b in zip(ref["optimizer"]["state"].values(), res["optimizer"]["state"].values()):
        assert torch.equal(a["momentum_buffer"], b["momentum_buffer"])


def test_atomic_save_leaves_no_partial_file(tmp_path):
    path = tmp_path / "ckpt.pth"
    atomic_save({"w": torch.arange(3)}, str(path))
    atomic_save({"w": torch.arange(4)}, str(path))
    assert os.listdir(tmp_path) == ["ckpt.pth"]
    assert torch.equal(load_checkpoint(str(path))["w"], torch.arange(4))

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    torch.save({"x": Evil()}, tmp_path / "evil.pth")
    with pytest.raises(ValueError, match="refuses, since loading it could run code"):
        load_checkpoint(str(tmp_path / "evil.pth"))


def test_lr_schedule():
    cfg = load_config(os.path.join(ROOT, FPN), ["SOLVER.IMS_PER_BATCH", "64"])
    assert scaled_lr(cfg) == pytest.approx(0.03 * 64 / 32)
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = WarmupLR(opt, max_iter=100, warmup_iters=10, warmup_factor=0.1)
    lrs = []
    for _ in range(100):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] == pytest.approx(0.1) and lrs[10] == pytest.approx(
        0.5 * (1 + math.cos(math.pi * 0.1))
    )
    assert all(a < b for a, b in zip(lrs[:10], lrs[1:11]))  # warm-up rises
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:]))  # cosine decays
    assert opt.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)


def test_broken_images_counted_once_across_workers_and_a_resume(tool, tmp_path):
    images = tmp_path / "images" / "class_a"
    images.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(13):
        cv2.imwrite(str(images / f"good_{i}.PNG"), rng.integers(0, 256, (40 + i, 60, 3), np.uint8))
    (images / "empty.jpg").write_bytes(b"")
    (images / "notes.jpg").write_text("not an image")
    png = (images / "good_0.PNG").read_bytes()
    (images / "truncated.png").write_bytes(png[: len(png) // 3])
    broken = sorted(str(images / n) for n in ("empty.jpg", "notes.jpg", "truncated.png"))
    before = {p.name: p.read_bytes() for p in images.iterdir()}

    # 16 images, batches of 8 (seed 0): iterations 1 and 2, built by the two workers, each meet the
    # three broken files (and replacements that may be broken again); iteration 3 meets one
    out = tmp_path / "run"
    opts = ["DATASETS.PRETRAIN", tmp_path / "images", "SOLVER.IMS_PER_BATCH", 8]
    opts += ["SOLVER.MAX_ITER", 3, "SOLVER.CHECKPOINT_PERIOD", 2, "DATALOADER.NUM_WORKERS", 2]
    opts += ["VIS_SAMPLES", 0]
    tool(*pretrain(out, *opts), check=True)
    assert load_checkpoint(str(out / "model_0000001.pth"))["bad_files"] == broken
    # the state of a run killed during iteration 3: its count must come from the checkpoint
    (out / "model_final.pth").unlink()
    (out / "last_checkpoint").write_text("model_0000001.pth")
    resumed = tool(*pretrain(out, *opts, resume=True), check=True)

    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in records] == [1, 2, 3]  # the resumed run's row replaces the old
    counts = [r["num_bad_images"] for r in records]
    assert all(type(c) is int for c in counts) and counts == [3, 3, 3], counts
    assert final_state(out)["bad_files"] == broken
    assert (out / "bad_images.txt").read_text().splitlines() == broken
    summary = (
        f"skipped 3 unreadable image files (each replaced by another image when met); "
        f"the list is in {out / 'bad_images.txt'}"
    )
    assert summary in resumed.stdout
    log = (out / "log.txt").read_text()  # the data workers write to the run's log as well
    assert all(f"skipping unreadable image: {name}" in log for name in broken)
    assert {p.name: p.read_bytes() for p in images.iterdir()} == before


def test_multistep_schedule_with_warmup():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.02)
    sched = WarmupLR(opt, max_iter=30, steps=(10, 20), gamma=0.1, warmup_iters=5, warmup_factor=0.1)
    lrs = []
    for _ in range(30):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] == pytest.approx(0.002) and lrs[5] == pytest.approx(0.02)
    assert lrs[9] == pytest.approx(0.02) and lrs[10] == pytest.approx(0.002)
    assert lrs[19] == pytest.approx(0.002) and lrs[20] == pytest.approx(0.0002)
    with pytest.raises(ValueError, match="increasing"):
        WarmupLR(opt, max_iter=30, steps=(20, 10))


def test_recipe_keeps_its_epochs_when_the_batch_changes():
    recipe = os.path.join(ROOT, "configs/pretrain/insloc_R50_FPN_200ep.yaml")
    n = 256 * 40  # images per epoch
    lengths = {}
    for batch in (64, 128, 256):
        cfg = load_config(recipe, ["SOLVER.IMS_PER_BATCH", batch])
        max_iter, period, why = schedule_in_iterations(cfg, n)
        assert max_iter * batch == 200 * n and period * batch == 5 * n  # 200 epochs, ckpt every 5
        assert f"{max_iter:,} iterations" in why and "SOLVER.EPOCHS 200" in why
        lengths[batch] = max_iter
    assert lengths[64] == 4 * lengths[256]
    # ImageNet at the official batch: the published 1,000,800 iterations.
    assert schedule_in_iterations(load_config(recipe), 1281167)[0] == 1000800
    # An explicit SOLVER.MAX_ITER (and CHECKPOINT_PERIOD) wins over the epochs.
    cfg = load_config(recipe, ["SOLVER.MAX_ITER", 1000, "SOLVER.CHECKPOINT_PERIOD", 300])
    max_iter, period, why = schedule_in_iterations(cfg, n)
    assert (max_iter, period) == (1000, 300) and "given" in why
    # Without a dataset size (a training with no epochs), iterations must be given.
    with pytest.raises(ValueError, match="SOLVER.MAX_ITER is 0"):
        schedule_in_iterations(load_config(recipe), None)


def test_trainer_derives_iterations_from_epochs(tmp_path, caplog):
    from insloc.engine.pretrain import PretrainTrainer

    opts = ["SOLVER.MAX_ITER", 0, "SOLVER.EPOCHS", 3, "DATASETS.SYNTHETIC.NUM_IMAGES", 100]
    opts += ["SOLVER.IMS_PER_BATCH", 16, "MODEL.DEVICE", "cpu", "OUTPUT_DIR", str(tmp_path)]
    cfg = load_config(os.path.join(ROOT, "configs/quick/moco_v2_tiny.yaml"), opts)
    with caplog.at_level(logging.INFO, logger="insloc.trainer"):
        trainer = PretrainTrainer(cfg)
    assert trainer.max_iter == trainer.scheduler.max_iter == 3 * (100 // 16)
    assert trainer.checkpoint_period == cfg.SOLVER.CHECKPOINT_PERIOD
    assert any("= 18 iterations" in r.getMessage() for r in caplog.records)


def test_schedule_scales_with_the_batch_and_keeps_the_epochs():
    from insloc.engine.optim import scale_schedule_to_batch

    opts = [
        "SOLVER.SCALE_ITERS_WITH_BATCH", "True", "SOLVER.REFERENCE_BATCH_SIZE", "16",
        "SOLVER.BASE_LR", "0.02", "SOLVER.MAX_ITER", "24000", "SOLVER.STEPS", "(18000, 22000)",
        "SOLVER.WARMUP_ITERS", "100", "SOLVER.CHECKPOINT_PERIOD", "5000",
        "SOLVER.LR_SCHEDULER_NAME", "WarmupMultiStepLR",
    ]  # fmt: skip
    reference = load_config(os.path.join(ROOT, FPN), [*opts, "SOLVER.IMS_PER_BATCH", "16"])
    same, message = scale_schedule_to_batch(reference)
    assert same is reference and message == ""
    cfg, message = scale_schedule_to_batch(
        load_config(os.path.join(ROOT, FPN), [*opts, "SOLVER.IMS_PER_BATCH", "2"])
    )
    assert cfg.SOLVER.MAX_ITER * 2 == 24000 * 16  # the same number of images: the same epochs
    assert list(cfg.SOLVER.STEPS) == [144000, 176000] and cfg.SOLVER.WARMUP_ITERS == 800
    assert cfg.SOLVER.CHECKPOINT_PERIOD == 40000
    assert scaled_lr(cfg) == pytest.approx(0.02 * 2 / 16)
    assert "SOLVER.MAX_ITER 24000 -> 192000" in message
    again, message = scale_schedule_to_batch(cfg)  # a saved config does not scale twice
    assert again is cfg and message == ""
    off = load_config(
        os.path.join(ROOT, FPN), ["SOLVER.IMS_PER_BATCH", "2", "SOLVER.MAX_ITER", "7"]
    )
    assert scale_schedule_to_batch(off)[0].SOLVER.MAX_ITER == 7  # off by default (pretraining)


def test_norm_parameters_get_their_own_weight_decay():
    from insloc.engine.optim import build_optimizer

    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    cfg = load_config(os.path.join(ROOT, FPN), ["SOLVER.WEIGHT_DECAY_NORM", "0.0"])
    groups = build_optimizer(cfg, model).param_groups
    assert [g["weight_decay"] for g in groups] == [1e-4, 0.0]
    assert {id(p) for p in groups[1]["params"]} == {id(p) for p in model[1].parameters()}
    groups = build_optimizer(load_config(os.path.join(ROOT, FPN)), model).param_groups
    assert len(groups) == 1 and groups[0]["weight_decay"] == 1e-4  # -1: decay everywhere


def test_flags_may_follow_the_overrides():
    from insloc.engine.defaults import default_argument_parser, parse_args

    args = parse_args(
        default_argument_parser("x"), ["SOLVER.BASE_LR", "-0.5", "--resume", "OUTPUT_DIR", "o"]
    )
    assert args.resume and args.opts == ["SOLVER.BASE_LR", "-0.5", "OUTPUT_DIR", "o"]


def test_bad_files_read_from_collated_and_list_batches():
    from insloc.data import collate_samples
    from insloc.engine.trainer import _bad_files

    samples = [
        {"x": torch.zeros(2), "bad_files": []},
        {"x": torch.ones(2), "bad_files": ["a.jpg", "b.jpg"]},
        {"x": torch.ones(2), "bad_files": ["a.jpg"]},
    ]
    batch = collate_samples([dict(s) for s in samples])  # pretraining: one collated dict
    assert batch["x"].shape == (3, 2) and batch["bad_files"] == ["a.jpg", "b.jpg", "a.jpg"]
    assert _bad_files(batch) == ["a.jpg", "b.jpg", "a.jpg"]
    assert _bad_files(samples) == ["a.jpg", "b.jpg", "a.jpg"]  # detection: a list of samples


def test_gradient_clipping_bounds_each_step():
    from insloc.engine.optim import build_gradient_clipper
    from insloc.engine.trainer import Trainer

    def clipper(opts=()):
        return build_gradient_clipper(load_config(os.path.join(ROOT, FPN), list(opts)))

    assert clipper() is None  # off by default
    on = ["SOLVER.CLIP_GRADIENTS.ENABLED", "True", "SOLVER.CLIP_GRADIENTS.CLIP_VALUE", "0.5"]
    p = torch.nn.Parameter(torch.zeros(4))
    p.grad = torch.tensor([3.0, 4.0, 0.0, -1.0])
    clipper(on)([p])
    assert torch.allclose(p.grad.norm(), torch.tensor(0.5))  # scaled together, direction kept
    assert torch.allclose(p.grad / p.grad.norm(), torch.tensor([3.0, 4.0, 0.0, -1.0]) / 26**0.5)
    p.grad = torch.tensor([3.0, 0.2, -4.0, 0.0])
    value = on + ["SOLVER.CLIP_GRADIENTS.CLIP_TYPE", "value"]
    clipper(value)([p])
    assert p.grad.tolist() == pytest.approx([0.5, 0.2, -0.5, 0.0])

    # Through the engine's step: a loss with a huge gradient moves the weights by lr * CLIP_VALUE.
    class Huge(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.ones(3))

        def forward(self, batch):
            return {"loss": 1e6 * (self.w * batch["x"]).sum()}

    for clip, expected in ((on, 0.5), ([], 1e6 * 3**0.5)):
        trainer = object.__new__(Trainer)
        trainer.device, trainer.amp_dtype = torch.device("cpu"), None
        trainer.train_model = model = Huge()
        trainer.optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
        trainer.scheduler = torch.optim.lr_scheduler.LambdaLR(trainer.optimizer, lambda _: 1.0)
        trainer.scaler = torch.amp.GradScaler("cuda", enabled=False)
        trainer.clip_gradients = clipper(clip)
        trainer.run_step({"x": torch.ones(3)}, 0)
        assert (model.w.detach() - 1).norm().item() == pytest.approx(expected, rel=1e-5)
    with pytest.raises(Exception, match="CLIP_TYPE"):
        load_config(os.path.join(ROOT, FPN), on + ["SOLVER.CLIP_GRADIENTS.CLIP_TYPE", "l2"])
