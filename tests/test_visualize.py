import cv2
import numpy as np
import pytest
import torch

from insloc.config import load_config
from insloc.data import SyntheticSource, build_pretrain_dataset
from insloc.utils import visualize
from insloc.utils.visualize import composite_grid, save_composite_grid

from .conftest import config_path

GREEN, RED, WHITE = visualize._GREEN, visualize._RED, (255, 255, 255)
TOP = visualize._STRIP  # the grid's first row of views starts below the column labels


def _sample(colour, key_pools_aug=False):
    image = torch.zeros(3, 32, 32, dtype=torch.uint8)
    image[:] = torch.tensor(colour, dtype=torch.uint8).view(3, 1, 1)
    box = torch.tensor([4.0, 6.0, 20.0, 26.0])
    aug = box + 2
    return {
        "q": image,
        "k": image.clone(),
        "q_boxes": torch.stack([box, box, aug]),  # L x 4: the last level pools the augmented box
        "k_boxes": torch.stack([box, box, aug if key_pools_aug else box]),
        "q_paste_box": box,
        "k_paste_box": box,
        "q_aug_box": aug,
        "k_aug_box": aug,
    }


def _tiles(grid, w=32):
    """The query and key views of the grid's first pair."""
    return grid[TOP : TOP + w, :w], grid[TOP : TOP + w, w + visualize._INNER_GAP :][:, :w]


def _has(tile, colour):
    return bool((tile == np.array(colour, np.uint8)).all(-1).any())


def test_grid_draws_pairs_labels_and_only_pooled_boxes(tmp_path):
    path = str(tmp_path / "grid.png")
    save_composite_grid([_sample((50, 50, 50)) for _ in range(5)], path, max_items=4)
    grid = cv2.imread(path)
    # 4 pairs in a 2 x 2 grid, pairs further apart than the two views of a pair
    assert grid.shape[0] >= 2 * 32 + 2 * TOP and grid.shape[1] >= 2 * 66
    q, k = _tiles(grid)
    assert tuple(q[6, 10]) == GREEN  # the pasted box's top edge
    assert tuple(q[8, 12]) == RED  # the augmented box's top edge: the query pools it
    assert tuple(q[16, 12]) == (50, 50, 50)  # inside: the image
    assert tuple(k[6, 10]) == GREEN and not _has(k, RED)  # the key pools its pasted box only
    second_pair = 2 * 32 + visualize._INNER_GAP + visualize._PAIR_GAP
    assert (grid[TOP : TOP + 32, 2 * 32 + visualize._INNER_GAP : second_pair] == 255).all()
    assert visualize._PAIR_GAP >= 4 * visualize._INNER_GAP
    # column labels: text above each view, "query" and "key" differ
    head_q, head_k = grid[:TOP, :32], grid[:TOP, 32 + visualize._INNER_GAP :][:, :32]
    assert (head_q < 128).any() and (head_k < 128).any()
    assert not np.array_equal(head_q, head_k)
    legend = grid[-TOP:]
    assert _has(legend, (0, 0, 0)) or (legend < 100).any()  # a legend line below the pairs
    key_aug = composite_grid([_sample((50, 50, 50), key_pools_aug=True)])
    assert _has(_tiles(key_aug)[1], RED)  # a recipe whose key pools it shows it there
    with pytest.raises(ValueError, match="no samples"):
        save_composite_grid([], str(tmp_path / "empty.png"))


def test_official_recipe_key_views_show_no_augmented_box():
    cfg = load_config(config_path("quick/insloc_tiny_FPN.yaml"))  # the official FPN recipe, tiny
    assert list(cfg.INPUT.BOX_AUG.KEY_FEATURES) == []
    dataset = build_pretrain_dataset(cfg, source=SyntheticSource(4, 128))
    samples = dataset.__getitems__([(0, i) for i in range(4)])
    w = cfg.INPUT.CANVAS_SIZE
    red_q = red_k = 0
    for s in samples:
        q, k = _tiles(composite_grid([s]), w)
        raw = [x.numpy().transpose(1, 2, 0)[:, :, ::-1] for x in (s["q"], s["k"])]
        is_red = [(t == np.array(RED, np.uint8)).all(-1) for t in (q, k)]
        was_red = [(r == np.array(RED, np.uint8)).all(-1) for r in raw]
        red_q += int((is_red[0] & ~was_red[0]).any())
        red_k += int((is_red[1] & ~was_red[1]).any())
    assert red_q > 0 and red_k == 0


@pytest.mark.parametrize("config", ["insloc_tiny_FPN.yaml", "moco_v2_tiny.yaml"])
def test_visualize_tool(tool, tmp_path, config):
    out = tmp_path / "grid.png"
    args = [
        "tools/visualize_pretrain_data.py",
        "--config-file",
        f"configs/quick/{config}",
        "--num",
        "4",
        "--output",
        str(out),
    ]
    tool(*args, "INPUT.COPY_PASTE.BACKGROUNDS", "batch", check=True)
    image = cv2.imread(str(out))
    assert image is not None and image.ndim == 3 and image.std() > 0
    before = out.read_bytes()
    proc = tool(*args)
    assert proc.returncode == 2 and "exists" in proc.stderr and out.read_bytes() == before
    proc = tool(*args[:-2], "--output", str(tmp_path / "x.png"), "DATASETS.PRETRAIN", "/no/such")
    assert proc.returncode == 2 and "/no/such" in proc.stderr
