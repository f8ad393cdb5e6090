import pytest
import torch
import torchvision
from torch.utils.data import default_collate

from insloc.config import load_config
from insloc.data import build_pretrain_dataset
from insloc.engine.optim import WarmupLR, build_lr_scheduler
from insloc.modeling import build_model
from insloc.modeling.backbone import NIN, VGG19BN, ExemplarCNN, ResNetV2, RevNet, build_resnet
from insloc.modeling.backbone.revnet import ReversibleBlock
from insloc.transfer.torchvision import convert_to_torchvision, detect_arch

QUICK = [
    "configs/quick/rotnet_NIN4_tiny.yaml",
    "configs/quick/jigsaw_R18_tiny.yaml",
    "configs/quick/relative_loc_VGG_tiny.yaml",
    "configs/quick/exemplar_tiny.yaml",
    "configs/quick/exemplar_triplet_tiny.yaml",
]


@pytest.mark.parametrize("config", QUICK)
def test_training_steps_lower_the_loss(config):
    cfg = load_config(config)
    dataset = build_pretrain_dataset(cfg)
    batch = default_collate([dataset[(0, i)] for i in range(4)])
    torch.manual_seed(0)
    model = build_model(cfg).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.9)

    def loss():
        out = model(batch)
        assert all(not v.requires_grad for k, v in out.items() if not k.startswith("loss"))
        return sum(v for k, v in out.items() if k.startswith("loss"))

    first = loss()
    for _ in range(4):
        opt.zero_grad()
        value = loss()
        value.backward()
        opt.step()
    assert loss().item() < first.item()


def test_reversible_blocks_invert():
    torch.manual_seed(0)
    block = ReversibleBlock(16, 8)
    x = torch.randn(2, 16, 6, 6)
    for mode in (block.train, block.eval):
        mode()
        with torch.no_grad():
            y = block(x)
            assert not torch.allclose(y, x)
            assert torch.allclose(block.inverse(y), x, atol=1e-5)
    net = RevNet(50, 8).eval()
    revs = [m for m in net.modules() if isinstance(m, ReversibleBlock)]
    assert len(revs) == 16 - 4  # every block but the first of each stage


@pytest.mark.parametrize(
    "trunk,taps,channels",
    [
        (
            lambda: build_resnet(50, 8),
            ["stem", "block1", "block2", "block3", "block4", "pre-logits"],
            256,
        ),
        (
            lambda: ResNetV2(50, 8),
            ["stem", "block1", "block2", "block3", "block4", "pre-logits"],
            256,
        ),
        (
            lambda: RevNet(50, 8),
            ["stem", "block1", "block2", "block3", "block4", "pre-logits"],
            256,
        ),
        (
            lambda: VGG19BN(4, 16),
            ["block1", "block2", "block3", "block4", "block5", "fc6", "pre-logits"],
            16,
        ),
        (lambda: NIN(3, 12), ["block1", "block2", "block3", "pre-logits"], 12),
        (lambda: NIN(5, 12), ["block1", "block2", "block3", "block4", "block5", "pre-logits"], 12),
        (
            lambda: ExemplarCNN("8c5-8c5-16c5-32f", 32),
            ["conv1", "conv2", "conv3", "pre-logits"],
            32,
        ),
    ],
)
def test_trunks_tap_every_block(trunk, taps, channels):
    torch.manual_seed(0)
    net = trunk().eval()
    assert net.tap_names == taps and net.out_channels == channels
    x = torch.randn(2, 3, 32, 32)
    maps = net.features(x, taps)
    assert list(maps) == taps
    assert maps["pre-logits"].shape[:2] == (2, channels)
    assert torch.equal(net(x)[net.out_feature], maps["pre-logits"])
    with pytest.raises(
        ValueError, match=r"unknown layer 'block9'.*valid layers are " + ", ".join(taps)
    ):
        net.features(x, ["block9"])


def test_widening_and_minus_variants():
    x = torch.randn(2, 3, 32, 32)
    for cls in (ResNetV2, RevNet):
        torch.manual_seed(0)
        plain, minus = cls(50, 8).eval(), cls(50, 8, last_relu=False).eval()
        # Revisiting SSL's widening factor k: WIDTH 16k gives pre-logits 512k (here k = 1/2)
        assert plain.out_channels == 512 // 2
        minus.load_state_dict(plain.state_dict())
        a, b = (
            plain.features(x, ["pre-logits"])["pre-logits"],
            minus.features(x, ["pre-logits"])["pre-logits"],
        )
        assert a.min() >= 0 and b.min() < 0 and torch.allclose(a, b.clamp(min=0))
    torch.manual_seed(0)
    plain, minus = build_resnet(18, 8).eval(), build_resnet(18, 8, last_relu=False).eval()
    assert plain.state_dict().keys() == minus.state_dict().keys()  # still torchvision names
    minus.load_state_dict(plain.state_dict())
    a, b = plain(x)["res5"], minus(x)["res5"]
    assert a.min() >= 0 and b.min() < 0 and torch.allclose(a, b.clamp(min=0))


def test_bad_exemplar_spec_names_it():
    with pytest.raises(ValueError, match="'64c5-oops'"):
        ExemplarCNN("64c5-oops")


def test_pretext_resnet_converts_to_torchvision():
    cfg = load_config("configs/pretrain/rotnet_R50w4_imagenet_35ep.yaml")
    torch.manual_seed(0)
    sd = build_model(cfg).state_dict()
    assert detect_arch(sd) == "pretext_resnet"
    converted = convert_to_torchvision(sd, "pretext_resnet")
    resnet = torchvision.models.resnet50()
    missing, unexpected = resnet.load_state_dict(converted, strict=False)
    assert sorted(missing) == ["fc.bias", "fc.weight"] and unexpected == []
    nin = build_model(load_config("configs/quick/rotnet_NIN4_tiny.yaml")).state_dict()
    with pytest.raises(ValueError, match="not a torchvision-style ResNet"):
        detect_arch(nin)


def test_multistep_schedule():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = WarmupLR(opt, max_iter=20, warmup_iters=4, warmup_factor=0.0, steps=(8, 14), gamma=0.2)
    lrs = []
    for _ in range(20):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[:4] == pytest.approx([0.0, 0.25, 0.5, 0.75])
    assert lrs[4:8] == pytest.approx([1.0] * 4)
    assert lrs[8:14] == pytest.approx([0.2] * 6) and lrs[14:] == pytest.approx([0.04] * 6)
    cfg = load_config("configs/pretrain/rotnet_NIN4_cifar10.yaml")
    sched = build_lr_scheduler(cfg, torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1))
    assert list(sched.steps) == [11730, 23460, 31280] and sched.gamma == 0.2
    assert [sched.factor(i) for i in (11729, 11730, 31280)] == pytest.approx([1.0, 0.2, 0.008])


@pytest.mark.parametrize(
    "opts,needle",
    [
        (["SOLVER.STEPS", "(30, 20)"], "SOLVER.STEPS"),
        (["SOLVER.STEPS", "(39100,)"], "below SOLVER.MAX_ITER"),
        (["MODEL.ROTATION.ANGLES", "(0, 30)"], "multiples of 45"),
        (["MODEL.BACKBONE.NAME", "resnet_fpn"], "MODEL.BACKBONE.NAME"),
        (["VIS_SAMPLES", "4"], "VIS_SAMPLES"),
    ],
)
def test_pretext_config_errors_name_the_key(opts, needle):
    from insloc.config import ConfigError

    with pytest.raises(ConfigError, match=needle):
        load_config("configs/pretrain/rotnet_NIN4_cifar10.yaml", opts)
