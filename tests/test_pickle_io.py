import os
import pickle
from collections import OrderedDict

import numpy as np
import pytest
import torch

from insloc.transfer.pickle_io import read_detectron2_pkl, write_detectron2_pkl


class _RunsACommand:
    """Pickles as a call of os.system: loading it with plain pickle would run the command."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_write_then_read_gives_the_same_tensors_in_order(tmp_path):
    torch.manual_seed(0)
    state = OrderedDict(
        [
            ("backbone.stem.conv1.weight", torch.randn(4, 3, 7, 7)),
            ("backbone.stem.conv1.norm.num_batches_tracked", torch.tensor(5)),
            ("roi_heads.box_predictor.cls_score.bias", torch.randn(3).double()),
        ]
    )
    path = str(tmp_path / "w.pkl")
    write_detectron2_pkl(state, path)
    with open(path, "rb") as f:
        raw = pickle.load(f)  # plain pickle: what detectron2 itself sees
    assert raw["__author__"] == "insloc" and raw["matching_heuristics"] is True
    assert all(isinstance(v, np.ndarray) for v in raw["model"].values())
    back = read_detectron2_pkl(path)
    assert list(back) == list(state)
    for k, v in state.items():
        assert back[k].dtype == v.dtype and torch.equal(back[k], v), k
    with pytest.raises(FileExistsError, match="w.pkl"):
        write_detectron2_pkl(state, path)


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_reads_bare_dicts_of_any_protocol_and_numpy_scalars(tmp_path, protocol):
    # protocol 2: detectron2's model zoo files; 5: numpy's out-of-band-capable path
    path = str(tmp_path / "bare.pkl")
    weights = {
        "res2.0.conv1.weight": np.arange(6, dtype=np.float32).reshape(2, 3),
        "n": np.int64(3),
    }
    with open(path, "wb") as f:
        pickle.dump(weights, f, protocol=protocol)
    back = read_detectron2_pkl(path)
    assert torch.equal(back["res2.0.conv1.weight"], torch.arange(6.0).view(2, 3))
    assert back["n"].item() == 3


@pytest.mark.parametrize(
    "payload, refused",
    [
        (lambda m: {"model": {"w": _RunsACommand(m)}}, "posix.system"),
        (lambda m: {"model": {"w": torch.zeros(2)}}, "torch"),
        (lambda m: {"model": {"w": np.array([_RunsACommand(m)], dtype=object)}}, "posix.system"),
    ],
)
def test_refuses_anything_but_arrays_without_running_it(tmp_path, payload, refused):
    marker = tmp_path / "ran"
    path = str(tmp_path / "evil.pkl")
    with open(path, "wb") as f:
        pickle.dump(payload(marker), f)
    with pytest.raises(ValueError, match="refusing to load") as e:
        read_detectron2_pkl(path)
    assert "evil.pkl" in str(e.value) and refused in str(e.value) and "\n" not in str(e.value)
    assert not marker.exists()


def test_bad_files_are_one_line_errors_naming_them(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pkl"):
        read_detectron2_pkl(str(tmp_path / "nope.pkl"))
    garbage = tmp_path / "garbage.pkl"
    garbage.write_bytes(b"not a pickle at all")
    with pytest.raises(ValueError, match="garbage.pkl: not a readable"):
        read_detectron2_pkl(str(garbage))
    for name, obj in [("list.pkl", [1, 2]), ("strings.pkl", {"model": {"w": "text"}})]:
        with open(tmp_path / name, "wb") as f:
            pickle.dump(obj, f)
        with pytest.raises(ValueError, match=name):
            read_detectron2_pkl(str(tmp_path / name))
