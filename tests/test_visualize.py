import cv2
import pytest
import torch

from insloc.utils.visualize import save_composite_grid


def _sample(colour):
    image = torch.zeros(3, 32, 32, dtype=torch.uint8)
    image[:] = torch.tensor(colour, dtype=torch.uint8).view(3, 1, 1)
    box = torch.tensor([4.0, 6.0, 20.0, 26.0])
    return {
        "q": image,
        "k": image.clone(),
        "q_paste_box": box,
        "k_paste_box": box,
        "q_aug_box": box + 2,
        "k_aug_box": box + 2,
    }


def test_grid_draws_pairs_and_boxes(tmp_path):
    path = str(tmp_path / "grid.png")
    save_composite_grid([_sample((50, 50, 50)) for _ in range(5)], path, max_items=4)
    grid = cv2.imread(path)
    # 4 pairs in a 2 x 2 grid of (32 + gap + 32)-wide cells
    assert grid.shape[0] >= 2 * 32 and grid.shape[1] >= 2 * 64
    q = grid[:32, :32]
    assert tuple(q[6, 10]) == (0, 200, 0)  # the pasted box's top edge, green (BGR)
    assert tuple(q[8, 12]) == (0, 0, 230)  # the augmented box's top edge, red (BGR)
    assert tuple(q[16, 12]) == (50, 50, 50)  # inside: the image
    with pytest.raises(ValueError, match="no samples"):
        save_composite_grid([], str(tmp_path / "empty.png"))


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
