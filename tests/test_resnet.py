import torch
import torchvision

from insloc.modeling.backbone import ResNetFPN, build_res5, build_resnet


def _shapes(state_dict):
    return {k: tuple(v.shape) for k, v in state_dict.items()}


def test_resnet50_names_and_shapes_equal_torchvision():
    expected = _shapes(torchvision.models.resnet50().state_dict())
    expected = {k: v for k, v in expected.items() if not k.startswith("fc.")}
    assert _shapes(build_resnet(50, 64, "BN").state_dict()) == expected


def test_c4_trunk_and_res5_split_resnet50():
    expected = _shapes(torchvision.models.resnet50().state_dict())
    trunk = _shapes(build_resnet(50, 64, "BN", num_stages=3).state_dict())
    res5 = {"layer4." + k: v for k, v in _shapes(build_res5(50, 64, "BN").state_dict()).items()}
    assert {**trunk, **res5} == {k: v for k, v in expected.items() if not k.startswith("fc.")}


def test_tiny_trunks_output_shapes():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 64, 64)
    c4 = build_resnet(18, 8, "BN", num_stages=3)
    assert c4.strides == {"res4": 16} and c4.out_channels == 32
    res4 = c4(x)["res4"]
    assert res4.shape == (2, 32, 4, 4)
    assert build_res5(18, 8, "BN")(res4).shape == (2, 64, 2, 2)
    r50 = build_resnet(50, 8, "BN")
    assert r50(x)["res5"].shape == (2, 256, 2, 2) and r50.out_channels == 256


def test_fpn_outputs_p2_to_p5():
    torch.manual_seed(0)
    fpn = ResNetFPN(build_resnet(18, 8, "BN"), out_channels=16, norm="BN")
    out = fpn(torch.randn(2, 3, 64, 64))
    assert list(out) == ["p2", "p3", "p4", "p5"]
    for name, stride in fpn.strides.items():
        assert out[name].shape == (2, 16, 64 // stride, 64 // stride)
    assert {k.split(".")[0] for k in fpn.state_dict()} == {"body", "fpn"}
