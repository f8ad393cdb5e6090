"""Pretraining datasets: InsLoc copy-paste composites and MoCo v2 two-crop views.

``__getitem__`` takes a key ``(epoch, index)`` and draws everything from
``SeedSequence([seed, epoch, index])``, so a sample is the same whatever the number of workers, the
process or the order in which samples are built. Images are decoded at a reduced size whenever the
crop allows it: all crop parameters are drawn from the header size first.

A file that fails to read is logged once, named in the sample's ``bad_files`` and replaced by
another index drawn from the sample's generator, so one bad file never stops a long run.
"""

import numpy as np
import torch

from .anchor_aug import AnchorBoxSampler
from .color import ColorAugmentation, hflip
from .copy_paste import crop_resize, paste, resize, sample_crop, sample_paste_plan
from .image_io import BadImageError, UnreadableDataError, choose_reduction, warn_unreadable_once
from .sources import ImageSource

__all__ = ["InsLocPretrainDataset", "TwoCropDataset", "sample_rng"]

MAX_CONSECUTIVE_FAILURES = 50


def sample_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The generator of every random draw of sample (epoch, index)."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, epoch, index])))


def _canvas(image: np.ndarray, size: int, interpolation: str) -> np.ndarray:
    """``image`` resized to size x size as an array of its own, since pasting writes into it: a
    canvas-sized image comes back from ``resize`` as itself, and a source may hand out read-only
    or shared arrays."""
    canvas = resize(image, (size, size), interpolation)
    return canvas.copy() if np.may_share_memory(canvas, image) else canvas


def _to_chw(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))  # 3 x H x W uint8


class _PretrainDataset(torch.utils.data.Dataset):
    """Keyed access, bad-file replacement and the shared flip for the two datasets below."""

    def __init__(self, source: ImageSource, seed: int, flip_prob: float, interpolation: str):
        self.source = source
        self.seed = seed
        self.flip_prob = flip_prob
        self.interpolation = interpolation

    def __len__(self) -> int:
        return len(self.source)

    def __getitems__(self, keys) -> list:
        """A batch of samples (the DataLoader fetches a batch's keys at once through this)."""
        return [self[key] for key in keys]

    def _load_first_good(self, index: int, rng: np.random.Generator, bad_files: list, plan_fn):
        """Run ``plan_fn(index, (h, w))`` then decode, replacing bad files by random indices.

        ``plan_fn`` returns (plan, reduction); the result is (index, (h, w), plan, image).
        The name of every bad file met is appended to ``bad_files``.
        """
        for _ in range(MAX_CONSECUTIVE_FAILURES):
            try:
                hw = self.source.size(index)
                plan, reduction = plan_fn(hw)
                return index, hw, plan, self.source.load(index, reduction)
            except BadImageError as e:
                name = self.source.name(index)
                bad_files.append(name)
                warn_unreadable_once(name, e)
                index = int(rng.integers(len(self.source)))
        raise UnreadableDataError(
            f"{MAX_CONSECUTIVE_FAILURES} consecutive unreadable images in image source "
            f"{getattr(self.source, 'description', type(self.source).__name__)}; check the data"
        )

    def _flip(self, image, boxes, rng):
        if rng.random() < self.flip_prob:
            return hflip(image, boxes)
        return image, np.asarray(boxes, np.float32)


class InsLocPretrainDataset(_PretrainDataset):
    """Two copy-paste composites of one foreground image, with pasted and augmented boxes.

    Args:
        source: the unlabelled images.
        canvas_size: side S of the square canvas.
        crop_scale, crop_ratio, crop_tries: RandomResizedCrop rule for the foreground crop.
        paste_size: (low, high) of the target size integers of the pasted crop.
        color_aug: applied to each whole composite; None disables it.
        box_sampler: anchor box augmentation; None makes the augmented box the pasted box.
        query_aug_levels, key_aug_levels: per pooled level (MODEL.ROI_BOX_HEAD.IN_FEATURES order),
            whether that level pools the augmented box (True) or the pasted box (False).
        seed: base of every sample's generator.
        flip_prob: probability of a horizontal flip of each composite.
        batch_backgrounds: take the backgrounds from the other images of the batch (ours, one
            decode per sample) instead of two more random images of the source (official).
        interpolation: "area" (ours) or "bilinear" (official) for every resize (``resize``).
    """

    def __init__(
        self,
        source: ImageSource,
        *,
        canvas_size: int,
        crop_scale=(0.2, 1.0),
        crop_ratio=(0.5, 2.0),
        crop_tries: int = 10,
        paste_size=(128, 255),
        color_aug: ColorAugmentation = None,
        box_sampler: AnchorBoxSampler = None,
        query_aug_levels=(False, False, False, True),
        key_aug_levels=(False, False, False, False),
        seed: int = 0,
        flip_prob: float = 0.5,
        batch_backgrounds: bool = False,
        interpolation: str = "area",
    ):
        super().__init__(source, seed, flip_prob, interpolation)
        self.batch_backgrounds = batch_backgrounds
        if len(query_aug_levels) != len(key_aug_levels) or not query_aug_levels:
            raise ValueError(
                f"query_aug_levels {list(query_aug_levels)} and key_aug_levels "
                f"{list(key_aug_levels)} need one flag per pooled level, the same number"
            )
        if paste_size[1] > canvas_size:
            raise ValueError(f"paste_size {tuple(paste_size)} exceeds canvas_size {canvas_size}")
        self.canvas_size = canvas_size
        self.plan_args = dict(
            canvas_size=canvas_size,
            crop_scale=tuple(crop_scale),
            crop_ratio=tuple(crop_ratio),
            crop_tries=crop_tries,
            paste_size=tuple(paste_size),
        )
        self.color_aug = color_aug
        self.box_sampler = box_sampler
        self.query_aug_levels = [bool(f) for f in query_aug_levels]
        self.key_aug_levels = [bool(f) for f in key_aug_levels]

    @classmethod
    def from_config(cls, cfg, source: ImageSource) -> "InsLocPretrainDataset":
        features = list(cfg.MODEL.ROI_BOX_HEAD.IN_FEATURES)
        aug = cfg.INPUT.BOX_AUG
        cp = cfg.INPUT.COPY_PASTE
        return cls(
            source,
            canvas_size=cfg.INPUT.CANVAS_SIZE,
            crop_scale=cp.CROP_SCALE,
            crop_ratio=cp.CROP_RATIO,
            crop_tries=cp.CROP_TRIES,
            paste_size=cp.PASTE_SIZE,
            color_aug=ColorAugmentation.from_config(cfg),
            box_sampler=AnchorBoxSampler.from_config(cfg) if aug.ENABLED else None,
            query_aug_levels=[f in aug.QUERY_FEATURES for f in features],
            key_aug_levels=[f in aug.KEY_FEATURES for f in features],
            seed=cfg.SEED,
            flip_prob=cfg.INPUT.COLOR.FLIP_PROB,
            batch_backgrounds=cp.BACKGROUNDS == "batch",
            interpolation=cfg.INPUT.RESIZE_INTERPOLATION,
        )

    def __getitem__(self, key) -> dict:
        """Sample ``key = (epoch, index)``, its two backgrounds drawn from the whole source.

        Returns:
            dict with ``q``, ``k`` (3 x S x S uint8 RGB), ``q_boxes``, ``k_boxes`` (L x 4 float32
            XYXY canvas pixels, one per level), ``q_paste_box``, ``q_aug_box``, ``k_paste_box``,
            ``k_aug_box`` ((4,) float32), ``index`` (int) and ``bad_files`` (names of the
            unreadable files met and replaced, usually empty).
        """
        epoch, index = key
        rng = sample_rng(self.seed, epoch, index)
        bad = []
        size = self.canvas_size
        index, hw, plans, fg = self._load_foreground(index, rng, bad, min_side=0)
        backgrounds = []
        for _ in range(2):
            bg_index = int(rng.integers(len(self.source)))
            _, _, _, bg = self._load_first_good(
                bg_index, rng, bad, lambda bhw: (None, choose_reduction(*bhw, size, size))
            )
            # aspect not kept (official recipe)
            backgrounds.append(_canvas(bg, size, self.interpolation))
        return self._compose(rng, index, hw, plans, fg, backgrounds, bad)

    def __getitems__(self, keys) -> list:
        """The samples of a batch; with ``batch_backgrounds`` their backgrounds are the batch's.

        Ours: each background is another foreground image of the same batch, already decoded,
        instead of two more images decoded per sample. A batch is a uniform draw from the source,
        so each background is still a uniformly random image, and a batch is a function of
        (SEED, iteration): samples stay independent of the number of workers.
        """
        if not self.batch_backgrounds:
            return super().__getitems__(keys)
        size = self.canvas_size
        loaded = []
        for epoch, index in keys:
            rng = sample_rng(self.seed, epoch, index)
            bad = []
            loaded.append((rng, bad, *self._load_foreground(index, rng, bad, min_side=size)))
        n = len(loaded)
        resized = {}  # batch position -> the image at canvas size, resized once
        samples = []
        for i, (rng, bad, index, hw, plans, fg) in enumerate(loaded):
            others = [(i + 1 + int(rng.integers(n - 1))) % n if n > 1 else i for _ in range(2)]
            for j in others:
                if j not in resized:
                    resized[j] = resize(loaded[j][5], (size, size), self.interpolation)
            # copies: an image is also a foreground, and pasting writes into the canvas
            backgrounds = [resized[j].copy() for j in others]
            samples.append(self._compose(rng, index, hw, plans, fg, backgrounds, bad))
        return samples

    def _load_foreground(self, index, rng, bad, min_side):
        """Decode image ``index`` (or its replacement) at the smallest size both views' crops and,
        when it also serves as a background, ``min_side`` allow. Returns (index, hw, plans, image).
        """

        def plan(hw):
            plans = [sample_paste_plan(*hw, rng=rng, **self.plan_args) for _ in range(2)]
            needs = [p.needed_size(*hw) for p in plans]
            need_h = max(min_side, *(n[0] for n in needs))
            need_w = max(min_side, *(n[1] for n in needs))
            return plans, choose_reduction(*hw, need_h, need_w)

        return self._load_first_good(index, rng, bad, plan)

    def _compose(self, rng, index, hw, plans, fg, backgrounds, bad_files) -> dict:
        """Paste each view's crop on its background, augment, flip, and draw the augmented box."""
        out = {}
        for name, plan, canvas, levels in (
            ("q", plans[0], backgrounds[0], self.query_aug_levels),
            ("k", plans[1], backgrounds[1], self.key_aug_levels),
        ):
            patch = crop_resize(fg, hw, plan.crop, plan.paste_size, self.interpolation)
            paste(canvas, patch, plan.position)
            if self.color_aug is not None:
                canvas = self.color_aug(canvas, rng)
            canvas, box = self._flip(canvas, plan.box, rng)
            aug_box = box.copy() if self.box_sampler is None else self.box_sampler(box, rng)
            out[name] = _to_chw(canvas)
            out[f"{name}_boxes"] = np.stack([aug_box if a else box for a in levels])  # L x 4
            out[f"{name}_paste_box"] = box
            out[f"{name}_aug_box"] = aug_box
        for k in list(out):
            if k not in ("q", "k"):
                out[k] = torch.from_numpy(out[k].astype(np.float32))
        out["index"] = index
        out["bad_files"] = bad_files
        return out


class TwoCropDataset(_PretrainDataset):
    """MoCo v2 views: two RandomResizedCrops of one image with the same colour augmentation policy.

    Args:
        source: the unlabelled images.
        crop_size: side C of each view.
        crop_scale, crop_ratio: RandomResizedCrop's area fraction and aspect ranges.
        color_aug: applied to each view; None disables it.
        seed: base of every sample's generator.
        flip_prob: probability of a horizontal flip of each view.
        crop_tries: RandomResizedCrop's tries before the centre-crop fallback.
        interpolation: "area" (ours; MoCo's PIL bilinear also averages when shrinking) or
            "bilinear" (OpenCV's, without averaging).
    """

    def __init__(
        self,
        source: ImageSource,
        *,
        crop_size: int,
        crop_scale=(0.2, 1.0),
        crop_ratio=(3 / 4, 4 / 3),
        color_aug: ColorAugmentation = None,
        seed: int = 0,
        flip_prob: float = 0.5,
        crop_tries: int = 10,
        interpolation: str = "area",
    ):
        super().__init__(source, seed, flip_prob, interpolation)
        self.crop_size = crop_size
        self.crop_scale = tuple(crop_scale)
        self.crop_ratio = tuple(crop_ratio)
        self.crop_tries = crop_tries
        self.color_aug = color_aug

    @classmethod
    def from_config(cls, cfg, source: ImageSource) -> "TwoCropDataset":
        m = cfg.INPUT.MOCO
        return cls(
            source,
            crop_size=m.CROP_SIZE,
            crop_scale=m.CROP_SCALE,
            crop_ratio=m.CROP_RATIO,
            color_aug=ColorAugmentation.from_config(cfg),
            seed=cfg.SEED,
            flip_prob=cfg.INPUT.COLOR.FLIP_PROB,
            interpolation=cfg.INPUT.RESIZE_INTERPOLATION,
        )

    def __getitem__(self, key) -> dict:
        """Sample ``key = (epoch, index)``.

        Returns:
            dict with ``q``, ``k`` (3 x C x C uint8 RGB), ``index`` (int) and ``bad_files``
            (names of the unreadable files met and replaced, usually empty).
        """
        epoch, index = key
        rng = sample_rng(self.seed, epoch, index)
        bad = []
        c = self.crop_size

        def plan_crops(hw):
            args = (self.crop_scale, self.crop_ratio, self.crop_tries, rng)
            crops = [sample_crop(*hw, *args) for _ in range(2)]
            need_h = max(c * hw[0] / crop[2] for crop in crops)
            need_w = max(c * hw[1] / crop[3] for crop in crops)
            return crops, choose_reduction(*hw, need_h, need_w)

        index, hw, crops, image = self._load_first_good(index, rng, bad, plan_crops)
        out = {}
        for name, crop in zip(("q", "k"), crops):
            view = crop_resize(image, hw, crop, (c, c), self.interpolation)
            if self.color_aug is not None:
                view = self.color_aug(view, rng)
            view, _ = self._flip(view, np.zeros(4, np.float32), rng)
            out[name] = _to_chw(view)
        out["index"] = index
        out["bad_files"] = bad
        return out
