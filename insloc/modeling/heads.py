"""Heads on pooled RoIs and on global features, and the projection to the embedding."""

from torch import nn
from torchvision.models.detection.faster_rcnn import FastRCNNConvFCHead

from .norm import norm_layer


def build_fpn_box_head(
    in_channels: int = 256,
    resolution: int = 7,
    num_conv: int = 4,
    conv_dim: int = 256,
    num_fc: int = 2,
    fc_dim: int = 1024,
    norm: str = "BN",
) -> FastRCNNConvFCHead:
    """torchvision's ``FastRCNNConvFCHead``: ``num_conv`` x (3x3 conv, norm, ReLU), flatten, fcs.

    With 4 BN convs its children ``0``..``3`` (convs) and ``5`` (first fc) are those of
    ``fasterrcnn_resnet50_fpn_v2().roi_heads.box_head``; further fcs (InsLoc's recipe has 2) follow
    at ``7``, ``9``, ... and do not transfer. Input M x in_channels x R x R, output M x fc_dim.
    """
    if num_fc < 1:
        raise ValueError("the FPN box head needs MODEL.ROI_BOX_HEAD.NUM_FC >= 1")
    head = FastRCNNConvFCHead(
        (in_channels, resolution, resolution),
        [conv_dim] * num_conv,
        [fc_dim] * num_fc,
        norm_layer=norm_layer(norm),
    )
    # The official InsLoc head's fc init (torchvision already gives the convs the official
    # kaiming-normal fan-out init): xavier-uniform weights, zero bias.
    for m in head.modules():
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)
    return head


def linear_projection(in_dim: int, out_dim: int) -> nn.Linear:
    """The FPN recipe's projection to the embedding, initialised as the official InsLoc code does:
    N(0, 0.01) weights, zero bias."""
    proj = nn.Linear(in_dim, out_dim)
    nn.init.normal_(proj.weight, std=0.01)
    nn.init.zeros_(proj.bias)
    return proj


class Res5RoIHead(nn.Module):
    """res5 on RoIs (detectron2's ``Res5ROIHeads`` shape) then average pooling.

    Args:
        res5: the last ResNet stage (``build_res5``), first block stride 2.
        out_channels: its output channels.
    """

    def __init__(self, res5: nn.Module, out_channels: int):
        super().__init__()
        self.res5 = res5
        self.out_channels = out_channels

    def forward(self, x):
        """Args: x: M x C4 x 14 x 14. Returns: M x out_channels."""
        return self.res5(x).mean(dim=(2, 3))  # res5: M x C5 x 7 x 7 -> M x C5


def projection(in_dim: int, hidden_dim: int, out_dim: int) -> nn.Module:
    """Linear ``in_dim -> out_dim`` when ``hidden_dim`` is 0, else the MLP ``in -> hidden -> out``
    with a ReLU (MoCo v2's head: 2048 -> 2048 -> 128), with PyTorch's default Linear init as
    MoCo's code."""
    if hidden_dim == 0:
        return nn.Linear(in_dim, out_dim)
    return nn.Sequential(
        nn.Linear(in_dim, hidden_dim), nn.ReLU(inplace=True), nn.Linear(hidden_dim, out_dim)
    )
