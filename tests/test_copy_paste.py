import numpy as np
import torch

from insloc.data.anchor_aug import AnchorBoxSampler, box_iou
from insloc.data.copy_paste import crop_resize, sample_crop, sample_paste_plan, sample_paste_size
from insloc.data.datasets import InsLocPretrainDataset
from insloc.data.sources import ImageSource

RED, BLUE = (255, 0, 0), (0, 0, 255)


class ArraySource(ImageSource):
    """In-memory images (the reduce hint is ignored: the caller maps coordinates by shape)."""

    def __init__(self, images):
        self.images = images

    def __len__(self):
        return len(self.images)

    def name(self, i):
        return f"array:{i}"

    def size(self, i):
        return self.images[i].shape[:2]

    def load(self, i, reduce=1):
        return self.images[i].copy()


def _constant(h, w, colour):
    return np.broadcast_to(np.array(colour, np.uint8), (h, w, 3)).copy()


def _dataset(source, **kw):
    args = dict(canvas_size=64, paste_size=(16, 48), query_aug_levels=[False, True])
    args.update(key_aug_levels=[False, False], seed=0)
    args.update(kw)
    return InsLocPretrainDataset(source, **args)


def test_sample_crop_follows_random_resized_crop_rule():
    for seed in range(200):
        rng = np.random.default_rng(seed)
        h, w = rng.integers(5, 300, size=2)
        top, left, ch, cw = sample_crop(h, w, (0.2, 1.0), (0.5, 2.0), 10, rng)
        assert 0 <= top and top + ch <= h and 0 <= left and left + cw <= w and ch > 0 and cw > 0
    # A 1000 x 10 strip cannot fit any draw of aspect >= 0.5: the centre-crop fallback.
    top, left, ch, cw = sample_crop(1000, 10, (0.2, 1.0), (0.5, 2.0), 10, np.random.default_rng(0))
    assert (top, left, ch, cw) == ((1000 - 20) // 2, 0, 20, 10)


def test_paste_sizes_within_ranges_and_aspect_kept():
    for seed in range(300):
        rng = np.random.default_rng(seed)
        ch, cw = (int(v) for v in rng.integers(3, 400, size=2))
        ph, pw = sample_paste_size(ch, cw, (128, 255), rng)
        assert 128 <= max(ph, pw) <= 254 and min(ph, pw) <= 254
        assert abs(pw / ph - cw / ch) <= (cw / ch) * (1 / min(ph, pw)) + 1e-6


def test_plan_box_inside_canvas():
    for seed in range(300):
        rng = np.random.default_rng(seed)
        h, w = (int(v) for v in rng.integers(5, 600, size=2))
        plan = sample_paste_plan(
            h,
            w,
            canvas_size=256,
            crop_scale=(0.2, 1.0),
            crop_ratio=(0.5, 2.0),
            crop_tries=10,
            paste_size=(128, 255),
            rng=rng,
        )
        x1, y1, x2, y2 = plan.box
        assert 0 <= x1 < x2 <= 256 and 0 <= y1 < y2 <= 256
        assert (y2 - y1, x2 - x1) == plan.paste_size


def test_crop_from_reduced_decode_matches_full_decode():
    yy, xx = np.mgrid[0:400, 0:300]
    full = np.dstack([xx * 255 // 300, yy * 255 // 400, np.zeros_like(xx)]).astype(np.uint8)
    reduced = full[::4, ::4]
    crop = (100, 60, 200, 120)
    a = crop_resize(full, (400, 300), crop, (40, 24)).astype(int)
    b = crop_resize(reduced, (400, 300), crop, (40, 24)).astype(int)
    assert np.abs(a - b).max() <= 6


def test_pasted_pixels_come_from_the_foreground_crop():
    images = [_constant(90, 70, RED)] + [_constant(50, 80, BLUE) for _ in range(40)]
    ds = _dataset(ArraySource(images))
    for epoch in range(20):
        s = ds[(epoch, 0)]
        for v in ("q", "k"):
            img = s[v].permute(1, 2, 0).numpy()
            x1, y1, x2, y2 = (int(c) for c in s[f"{v}_paste_box"])
            assert (img[y1:y2, x1:x2] == RED).all()
            outside = np.ones(img.shape[:2], bool)
            outside[y1:y2, x1:x2] = False
            if outside.any() and not (img[outside] == RED).all():  # unless background 0 drawn
                assert (img[outside] == BLUE).all()


def test_flip_moves_box_with_the_image():
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, size=(60, 80, 3), dtype=np.uint8) for _ in range(5)]
    source = ArraySource(images)
    plain = _dataset(source, flip_prob=0.0)[(3, 1)]
    flipped = _dataset(source, flip_prob=1.0)[(3, 1)]
    for v in ("q", "k"):
        np.testing.assert_array_equal(flipped[v].numpy(), plain[v].numpy()[:, :, ::-1])
        x1, y1, x2, y2 = plain[f"{v}_paste_box"].tolist()
        assert flipped[f"{v}_paste_box"].tolist() == [64 - x2, y1, 64 - x1, y2]
        # No box sampler: the augmented box is the pasted box.
        assert flipped[f"{v}_aug_box"].tolist() == flipped[f"{v}_paste_box"].tolist()


def test_augmented_box_drawn_around_the_flipped_box():
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, size=(40, 40, 3), dtype=np.uint8) for _ in range(5)]
    sampler = AnchorBoxSampler(64, stride=8, sizes=(16, 32, 64))
    ds = _dataset(ArraySource(images), box_sampler=sampler, flip_prob=1.0)
    for index in range(5):
        s = ds[(0, index)]
        paste_box, aug_box = s["q_paste_box"].numpy(), s["q_aug_box"].numpy()
        if len(sampler.candidates(paste_box)):
            assert box_iou(paste_box[None], aug_box[None])[0, 0] > 0.5
        np.testing.assert_array_equal(s["q_boxes"].numpy(), np.stack([paste_box, aug_box]))


def test_tiny_images_are_upscaled():
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, size=(5, 5, 3), dtype=np.uint8) for _ in range(3)]
    s = _dataset(ArraySource(images))[(0, 2)]
    assert s["q"].shape == (3, 64, 64)
    x1, y1, x2, y2 = s["q_paste_box"].tolist()
    assert 16 <= max(x2 - x1, y2 - y1) < 48


def test_batch_backgrounds_are_other_images_of_the_batch():
    # Constant-colour images of exactly the canvas size: resizing a background returns the image
    # itself, so a missing copy would let one sample's paste paint over another's foreground.
    colours = [(10 * i, 255 - 10 * i, (37 * i) % 256) for i in range(12)]
    source = ArraySource([_constant(64, 64, c) for c in colours])
    dataset = _dataset(source, batch_backgrounds=True)
    keys = [(0, i) for i in (3, 7, 1, 9, 4, 0)]
    samples = dataset.__getitems__(keys)
    assert [s["index"] for s in samples] == [k[1] for k in keys]
    batch_colours = {colours[k[1]] for k in keys}
    for s in samples:
        own = colours[s["index"]]
        for view in ("q", "k"):
            image = s[view].permute(1, 2, 0).numpy()
            x1, y1, x2, y2 = s[f"{view}_paste_box"].round().int().tolist()
            inside = {tuple(p) for p in image[y1:y2, x1:x2].reshape(-1, 3)}
            assert inside == {own}  # the foreground, untouched by other samples' pastes
            outside = np.ones(image.shape[:2], bool)
            outside[y1:y2, x1:x2] = False
            background = {tuple(p) for p in image[outside].reshape(-1, 3)}
            if background:  # a paste can cover the whole canvas
                assert len(background) == 1 and background <= batch_colours - {own}
    # The same batch gives the same samples; the official mode draws from the whole source.
    again = dataset.__getitems__(keys)
    assert all(torch.equal(a["q"], b["q"]) for a, b in zip(samples, again))


class ReadOnlySource(ArraySource):
    """A source handing out read-only arrays (as ``np.asarray`` of a PIL image, or a memory map)."""

    def load(self, i, reduce=1):
        image = self.images[i].copy()
        image.setflags(write=False)
        return image


def test_read_only_canvas_sized_images_are_not_written():
    # Canvas-sized backgrounds need no resize: pasting must not write into the source's array.
    images = [_constant(64, 64, (20 * i, 100, 200 - 20 * i)) for i in range(6)]
    originals = [im.copy() for im in images]
    for batch_backgrounds in (False, True):
        ds = _dataset(ReadOnlySource(images), batch_backgrounds=batch_backgrounds)
        samples = ds.__getitems__([(0, i) for i in range(6)])
        assert all(s["q"].shape == (3, 64, 64) for s in samples)
    for image, original in zip(images, originals):
        np.testing.assert_array_equal(image, original)


def test_resize_interpolation_key():
    # Ours averages when shrinking; "bilinear" is the official code's OpenCV bilinear (mmcv).
    import cv2

    from insloc.config import get_cfg
    from insloc.data.copy_paste import resize

    image = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    area = resize(image, (20, 20))
    bilinear = resize(image, (20, 20), "bilinear")
    np.testing.assert_array_equal(area, cv2.resize(image, (20, 20), interpolation=cv2.INTER_AREA))
    np.testing.assert_array_equal(bilinear, cv2.resize(image, (20, 20)))
    assert area.std() < bilinear.std()  # averaging smooths the noise; bilinear samples it
    cfg = get_cfg()
    cfg.INPUT.RESIZE_INTERPOLATION = "bilinear"
    assert InsLocPretrainDataset.from_config(cfg, ArraySource([image])).interpolation == "bilinear"
