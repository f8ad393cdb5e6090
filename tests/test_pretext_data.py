import numpy as np
import pytest
import torch

from insloc.config import load_config
from insloc.data.datasets import sample_rng
from insloc.data.exemplar import ExemplarDataset
from insloc.data.jigsaw import (
    JigsawDataset,
    jigsaw_permutations,
    min_hamming_distance,
    permutations_from_config,
)
from insloc.data.pretext import cut_tiles
from insloc.data.relative_loc import (
    _GREEN_MAGENTA,
    NEIGHBOURS,
    RelativeLocDataset,
    chromatic_drop,
    chromatic_project,
)
from insloc.data.rotation import RotationDataset, rotate
from insloc.data.sources import SyntheticSource

from .test_copy_paste import ArraySource


def random_images(n, side, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (side, side, 3), dtype=np.uint8) for _ in range(n)]


def test_rotations_are_exact_and_labelled():
    image = random_images(1, 12)[0]
    x = image
    for _ in range(4):
        x = rotate(x, 90)
    assert np.array_equal(x, image)  # four 90-degree rotations compose to the identity
    r = rotate(image, 90)  # counter-clockwise: the top row becomes the left column, reversed
    assert np.array_equal(r[:, 0], image[0, ::-1])
    assert np.array_equal(rotate(image, 180), image[::-1, ::-1])
    assert np.array_equal(rotate(image, 270), rotate(rotate(image, 180), 90))

    ds = RotationDataset(ArraySource(random_images(3, 20)), resize=0, crop_size=16, flip_prob=0.5)
    sample = ds[(1, 2)]
    assert torch.equal(sample["labels"], torch.arange(4))
    views = sample["images"].permute(0, 2, 3, 1).numpy()  # 4 x 16 x 16 x 3
    for k, angle in enumerate((0, 90, 180, 270)):
        assert np.array_equal(views[k], rotate(views[0], angle))
    assert len({v.tobytes() for v in views}) == 4
    assert torch.equal(ds[(1, 2)]["images"], sample["images"])  # keyed: the same draw again


def test_eight_rotations_interpolate_and_keep_size():
    ds = RotationDataset(
        ArraySource(random_images(2, 24)), resize=0, crop_size=24, angles=range(0, 360, 45)
    )
    sample = ds[(0, 0)]
    assert sample["images"].shape == (8, 3, 24, 24) and torch.equal(
        sample["labels"], torch.arange(8)
    )
    smooth = np.tile(np.linspace(0, 255, 24, dtype=np.float32)[None, :, None], (24, 1, 3))
    twice = rotate(rotate(smooth, 45), 45)
    assert np.abs(twice - rotate(smooth, 90))[6:18, 6:18].max() < 8  # close away from the corners


def test_jigsaw_permutations_distinct_with_min_hamming():
    perms = jigsaw_permutations(30, seed=3)
    assert perms.shape == (30, 9)
    assert all(sorted(p) == list(range(9)) for p in perms.tolist())
    assert len({tuple(p) for p in perms.tolist()}) == 30
    assert min_hamming_distance(perms) >= 7
    cfg = load_config("configs/quick/jigsaw_R18_tiny.yaml")
    assert min_hamming_distance(permutations_from_config(cfg)) >= cfg.MODEL.JIGSAW.MIN_HAMMING
    too_far = load_config("configs/quick/jigsaw_R18_tiny.yaml", ["MODEL.JIGSAW.MIN_HAMMING", "9"])
    with pytest.raises(ValueError, match="MIN_HAMMING"):
        permutations_from_config(too_far)


def test_jigsaw_tiles_reassemble_the_image():
    image = random_images(1, 30)[0]
    tiles, origins = cut_tiles(image, 10, 0, np.random.default_rng(0))
    grid = np.concatenate(
        [np.concatenate(list(tiles[r * 3 : r * 3 + 3]), axis=1) for r in range(3)]
    )
    assert np.array_equal(grid, image)

    perms = jigsaw_permutations(10)
    ds = JigsawDataset(
        ArraySource(random_images(4, 40)),
        resize=0,
        crop_size=30,
        tile_size=10,
        jitter=0,
        permutations=perms,
    )
    for index in range(4):
        sample = ds[(0, index)]
        rng = sample_rng(ds.seed, 0, index)
        _, crop = ds.load_crop(index, rng, [0])  # the draws the sample started with
        shuffled = sample["images"].permute(0, 2, 3, 1).numpy()  # 9 x 10 x 10 x 3
        perm = perms[int(sample["labels"])]
        tiles = np.empty_like(shuffled)
        tiles[perm] = shuffled  # position j holds tile perm[j]
        rebuilt = np.concatenate(
            [np.concatenate(list(tiles[r * 3 : r * 3 + 3]), axis=1) for r in range(3)]
        )
        assert np.array_equal(rebuilt, crop)


def _cell_coloured_image(cell):
    """3x3 cells, cell k filled with the value 20 k + 10 in every channel."""
    image = np.zeros((3 * cell, 3 * cell, 3), np.uint8)
    for k in range(9):
        r, c = divmod(k, 3)
        image[r * cell : (r + 1) * cell, c * cell : (c + 1) * cell] = 20 * k + 10
    return image


def test_relative_location_labels_match_tile_positions():
    source = ArraySource([_cell_coloured_image(16)] * 4)
    ds = RelativeLocDataset(source, resize=0, crop_size=48, tile_size=10, jitter=3, flip_prob=0.0)
    seen = set()
    for epoch in range(8):
        for index in range(4):
            sample = ds[(epoch, index)]
            centre, neighbour = sample["images"].numpy()
            label = int(sample["labels"])
            assert np.all(centre == 20 * 4 + 10)  # the tiles stay inside their cells
            assert np.all(neighbour == 20 * NEIGHBOURS[label] + 10)
            seen.add(label)
    assert len(seen) >= 6


def test_chromatic_countermeasures():
    patch = random_images(1, 16)[0]
    dropped = chromatic_drop(patch, np.random.default_rng(0)).astype(np.int32)
    kept = [c for c in range(3) if np.array_equal(dropped[..., c], patch[..., c])]
    assert len(kept) == 1
    others = [c for c in range(3) if c != kept[0]]
    assert all(dropped[..., c].std() < 3 for c in others)  # noise, far flatter than the image
    patch = np.random.default_rng(1).integers(60, 190, (16, 16, 3), dtype=np.uint8)  # no clipping
    projected = chromatic_project(patch).astype(np.float32)
    centred = projected - patch.reshape(-1, 3).mean(axis=0)
    assert np.abs(centred @ _GREEN_MAGENTA).max() < 1.5  # rounding only
    assert np.abs(patch @ _GREEN_MAGENTA).max() > 20


def test_exemplar_classes_hold_transformed_copies_of_their_seed():
    source = SyntheticSource(12, 64, seed=1)
    common = dict(resize=64, crop_size=64, num_classes=12, patch_size=16, seed_size=16, copies=4)
    identity = ExemplarDataset(
        source,
        translate=0.0,
        scale=(1.0, 1.0),
        rotate=0.0,
        contrast_power=(1.0, 1.0),
        hue=0.0,
        **common,
    )
    for index in (0, 5):
        copies = identity[(3, index)]["images"].permute(0, 2, 3, 1).numpy()
        assert all(np.array_equal(c, identity.seed_patch(index)) for c in copies)

    ds = ExemplarDataset(
        source,
        translate=0.1,
        scale=(0.9, 1.1),
        rotate=10.0,
        hue=0.02,
        contrast_power=(0.8, 1.25),
        **common,
    )
    seeds = np.stack([ds.seed_patch(i) for i in range(12)]).astype(np.float32)  # 12 x P x P x 3
    assert ds.seed_of(4)[1] == ds.seed_of(4)[1]  # fixed for the run
    hits = total = 0
    for index in range(12):
        sample = ds[(1, index)]
        assert torch.equal(sample["labels"], torch.full((4,), index))
        copies = sample["images"].permute(0, 2, 3, 1).numpy().astype(np.float32)
        assert len({c.tobytes() for c in copies}) == 4  # transformed, not identical
        for c in copies:
            nearest = int(((seeds - c) ** 2).mean(axis=(1, 2, 3)).argmin())
            hits += nearest == index
            total += 1
    assert hits / total >= 0.75
