import pytest
import torch
from torch import nn

from insloc.modeling.norm import (
    SplitBatchNorm,
    choose_split_groups,
    convert_to_split_bn,
    get_norm,
    norm_layer,
)


def _two_groups():
    torch.manual_seed(0)
    a = torch.randn(4, 3, 5, 5) * 2 + 10.0  # group 0: mean 10
    b = torch.randn(4, 3, 5, 5) * 0.5 - 3.0  # group 1: mean -3
    return torch.cat([a, b])  # 8 x 3 x 5 x 5


def test_each_group_normalised_with_its_own_statistics():
    x = _two_groups()
    y = SplitBatchNorm(3, num_splits=2).train()(x)
    for group in y.split(4):
        assert group.mean(dim=(0, 2, 3)).abs().max() < 1e-5
        assert (group.var(dim=(0, 2, 3), unbiased=False) - 1).abs().max() < 1e-3
    # Same as a BatchNorm2d on each contiguous group.
    bn = nn.BatchNorm2d(3).train()
    expected = torch.cat([bn(g) for g in x.split(4)])
    torch.testing.assert_close(y, expected, rtol=1e-5, atol=1e-5)


def test_running_stats_are_the_mean_over_groups():
    x = _two_groups()
    split = SplitBatchNorm(3, num_splits=2).train()
    split(x)
    per_group = [nn.BatchNorm2d(3).train() for _ in range(2)]
    for bn, g in zip(per_group, x.split(4)):
        bn(g)
    mean = (per_group[0].running_mean + per_group[1].running_mean) / 2
    var = (per_group[0].running_var + per_group[1].running_var) / 2
    torch.testing.assert_close(split.running_mean, mean)
    torch.testing.assert_close(split.running_var, var)
    assert int(split.num_batches_tracked) == 1


def test_eval_mode_equals_batchnorm_and_names_match():
    torch.manual_seed(0)
    bn = nn.BatchNorm2d(3)
    bn.running_mean.uniform_(-1, 1)
    bn.weight.data.uniform_(0.5, 2)
    split = SplitBatchNorm(3, num_splits=4)
    split.load_state_dict(bn.state_dict())
    assert list(split.state_dict()) == list(bn.state_dict())
    x = torch.randn(3, 3, 4, 4)  # any batch size in eval mode
    torch.testing.assert_close(split.eval()(x), bn.eval()(x))


def test_batch_not_divisible_names_the_keys():
    with pytest.raises(ValueError, match="SOLVER.IMS_PER_BATCH.*MODEL.MOCO.SPLIT_BN_GROUPS"):
        SplitBatchNorm(3, num_splits=4).train()(torch.randn(6, 3, 2, 2))


def test_convert_keeps_weights_and_skips_syncbn():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4), nn.Sequential(nn.SyncBatchNorm(4)))
    model[1].weight.data.uniform_()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    assert convert_to_split_bn(model, 2) is model
    assert type(model[1]) is SplitBatchNorm and model[1].num_splits == 2
    assert type(model[2][0]) is nn.SyncBatchNorm
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, before[k])


def test_get_norm():
    assert isinstance(get_norm("BN", 8), nn.BatchNorm2d)
    assert isinstance(get_norm("SyncBN", 8), nn.SyncBatchNorm)
    gn = get_norm("GN", 64)
    assert isinstance(gn, nn.GroupNorm) and gn.num_groups == 32
    assert get_norm("", 8) is None and norm_layer("") is None
    with pytest.raises(ValueError, match="unknown norm"):
        norm_layer("LN")


def test_split_groups_keep_the_samples_per_group_where_the_batch_allows():
    assert choose_split_groups(256, 32) == 8  # MoCo's single-GPU demo: 8 groups of 32
    assert choose_split_groups(64, 32) == 2
    assert choose_split_groups(96, 32) == 3
    assert choose_split_groups(100, 32) == 4  # 25 per group, the closest divisor
    assert choose_split_groups(48, 32) == 2  # 24 per group rather than 16
    assert choose_split_groups(32, 32) == 2  # at least two groups, or shuffling does nothing
    assert choose_split_groups(2, 32) == 2
    assert choose_split_groups(1, 32) == 1
