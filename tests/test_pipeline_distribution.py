"""The pretraining samples keep their distribution through the data-pipeline speed work.

Statistics of InsLoc (official per-sample backgrounds) and MoCo v2 samples on fixed seeds, over a
folder of PNG (one with an EXIF orientation) and JPEG files (large enough for reduced decoding),
are compared with the values the code before that work (commit a23fe96) gave on the same keys.
``_statistics`` uses only the API that code had, so the reference values are reproduced with
``PYTHONPATH=<checkout of a23fe96> python tests/test_pipeline_distribution.py``.

Each statistic is a mean over the samples' views, with its standard error s / sqrt(n) from the
same views (for a fraction p: sqrt(p (1 - p) / n)). Two independent runs of the same distribution
differ by sqrt(2) standard errors on average; the tolerance is 4 sqrt(2) of them (a false alarm
once in about 16000 statistics), whatever the random stream: a pipeline that draws in another
order passes, one that moves boxes by ~10 px, the pixel means by ~5 gray levels or the sharpness
(blur, interpolation) by ~5% fails. The code of this branch gives the reference values exactly.
"""

import os

import numpy as np
from PIL import Image

N = 192  # samples per dataset; each gives two views
CANVAS = 256

# Recorded with the code of a23fe96 (see the docstring): statistic -> value.
REFERENCE = {
    "InsLoc pixel mean r": 124.20961634318034,
    "InsLoc pixel mean g": 126.92747938632965,
    "InsLoc pixel mean b": 126.9638163248698,
    "InsLoc channel spread": 34.56538166850805,
    "InsLoc sharpness": 6.702681261425217,
    "paste box x1": 38.927083333333336,
    "paste box y1": 47.833333333333336,
    "paste box width": 178.99739583333334,
    "paste box height": 163.96354166666666,
    "paste box sqrt area": 168.79826114575067,
    "paste box log aspect": 0.09002207328618776,
    "paste box inside canvas": 1.0,
    "paste box centre right": 0.4895833333333333,
    "aug box x1": 41.93864572606981,
    "aug box y1": 46.33669307362288,
    "aug box width": 176.20604610443115,
    "aug box height": 164.40994834899902,
    "aug box sqrt area": 166.33333333333334,
    "aug box log aspect": 0.09357593270639579,
    "aug box inside canvas": 0.6276041666666666,
    "aug box centre right": 0.4322916666666667,
    "MoCo pixel mean r": 124.56177947918574,
    "MoCo pixel mean g": 126.9226022164027,
    "MoCo pixel mean b": 126.89551468690236,
    "MoCo channel spread": 34.14961734165748,
    "MoCo sharpness": 5.016168776589136,
}


def write_images(folder: str) -> None:
    """Smooth random scenes: PNGs, a PNG stored sideways (EXIF 6) and JPEGs of 600 x 800+."""
    rng = np.random.default_rng(0)
    sizes = [(300, 400, "png"), (480, 360, "png"), (256, 256, "png"), (200, 500, "png")]
    sizes += [(640, 880, "jpg"), (900, 700, "jpg"), (600, 800, "jpg"), (350, 420, "jpg")]
    for i, (h, w, ext) in enumerate(sizes):
        small = rng.integers(0, 256, (h // 24 + 2, w // 24 + 2, 3), dtype=np.uint8)
        img = Image.fromarray(small).resize((w, h), Image.BICUBIC)
        path = os.path.join(folder, f"{i:02d}.{ext}")
        if i == 1:  # stored rotated, upright 360 x 480 after EXIF orientation 6
            exif = Image.Exif()
            exif[0x0112] = 6
            img.save(path, exif=exif)
        else:
            img.save(path, quality=90) if ext == "jpg" else img.save(path)


def _mean(values) -> tuple:
    """(mean, standard error of the mean) of a 1-d sample."""
    values = np.asarray(values, np.float64)
    return values.mean(), values.std(ddof=1) / np.sqrt(len(values))


def _statistics(folder: str) -> dict:
    """name -> (value, standard error) over N samples of each dataset, keys (epoch, index)."""
    from insloc.config import get_cfg
    from insloc.data import build_pretrain_dataset

    stats = {}
    for arch in ("InsLoc", "MoCo"):
        cfg = get_cfg()
        cfg.MODEL.META_ARCHITECTURE = arch
        cfg.DATASETS.PRETRAIN = folder
        cfg.INPUT.COPY_PASTE.BACKGROUNDS = "dataset"
        ds = build_pretrain_dataset(cfg)
        samples = [ds[(e, i % len(ds))] for e in range(N // len(ds)) for i in range(len(ds))]
        views = np.stack([s[v].numpy() for s in samples for v in ("q", "k")]).astype(np.float32)
        for c, name in enumerate("rgb"):
            stats[f"{arch} pixel mean {name}"] = _mean(views[:, c].mean(axis=(1, 2)))
        # colourfulness (saturation jitter, grayscale) and sharpness (blur, interpolation)
        stats[f"{arch} channel spread"] = _mean(views.std(axis=1).mean(axis=(1, 2)))
        sharpness = np.abs(np.diff(views, axis=3)).mean(axis=(1, 2, 3))
        stats[f"{arch} sharpness"] = _mean(sharpness)
        if arch != "InsLoc":
            continue
        for kind in ("paste", "aug"):
            boxes = np.stack([s[f"{v}_{kind}_box"].numpy() for s in samples for v in "qk"])
            w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
            stats[f"{kind} box x1"] = _mean(boxes[:, 0])
            stats[f"{kind} box y1"] = _mean(boxes[:, 1])
            stats[f"{kind} box width"] = _mean(w)
            stats[f"{kind} box height"] = _mean(h)
            stats[f"{kind} box sqrt area"] = _mean(np.sqrt(w * h))
            stats[f"{kind} box log aspect"] = _mean(np.log(w / h))
            stats[f"{kind} box inside canvas"] = _mean(
                ((boxes[:, :2] >= 0) & (boxes[:, 2:] <= CANVAS)).all(1)
            )
            stats[f"{kind} box centre right"] = _mean(boxes[:, 0] + boxes[:, 2] > CANVAS)
    return {k: (float(v), float(se)) for k, (v, se) in stats.items()}


def test_samples_keep_their_distribution(tmp_path):
    write_images(str(tmp_path))
    stats = _statistics(str(tmp_path))
    assert set(stats) == set(REFERENCE)
    for name, (value, stderr) in stats.items():
        tol = 4 * np.sqrt(2) * max(stderr, 1e-3)
        print(f"{name}: {value:.4f} (reference {REFERENCE[name]:.4f}, tolerance {tol:.4f})")
        assert abs(value - REFERENCE[name]) <= tol, name


if __name__ == "__main__":  # print the reference values of the code on PYTHONPATH
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        write_images(d)
        for k, (v, _) in _statistics(d).items():
            print(f"    {k!r}: {v!r},")
