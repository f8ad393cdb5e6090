"""Named feature taps: read the map after any block of a classification trunk by name.

Linear probes (Revisiting SSL, RotNet) train a classifier on frozen features after every block; a
trunk that lists its stages in order gives them all with one forward pass that stops at the last
requested one.
"""

from typing import Callable, Dict, List, Sequence, Tuple

import torch
from torch import nn

PRE_LOGITS = "pre-logits"


def check_taps(taps: Sequence[str], valid: Sequence[str], owner: str) -> None:
    """Raise a one-line ValueError naming the first unknown tap and listing the valid ones."""
    if not taps:
        raise ValueError(f"no feature taps requested from {owner}; valid: {', '.join(valid)}")
    for name in taps:
        if name not in valid:
            raise ValueError(
                f"unknown layer {name!r} for {owner}: valid layers are {', '.join(valid)}"
            )


class TappedTrunk(nn.Module):
    """Base of trunks whose maps after every block can be read by name.

    Subclasses implement ``named_stages()``: the stages in order, each ``(name, fn)`` where the map
    after ``fn`` is tap ``name``. The last stage is ``"pre-logits"``, the representation a
    classifier of the pretext task reads after global average pooling.

    Attributes:
        out_feature: the name ``forward`` returns ("pre-logits" unless a subclass says otherwise).
    """

    out_feature = PRE_LOGITS

    def named_stages(self) -> List[Tuple[str, Callable[[torch.Tensor], torch.Tensor]]]:
        raise NotImplementedError

    @property
    def tap_names(self) -> List[str]:
        """Valid tap names, in forward order."""
        return [name for name, _ in self.named_stages()]

    def features(self, x: torch.Tensor, taps: Sequence[str]) -> Dict[str, torch.Tensor]:
        """Maps after the requested blocks.

        Args:
            x: N x 3 x H x W normalised images.
            taps: names among ``tap_names``.
        Returns:
            {name: N x C_name x H_name x W_name} for every requested name.
        """
        stages = self.named_stages()
        check_taps(taps, [name for name, _ in stages], type(self).__name__)
        wanted = set(taps)
        out = {}
        for name, stage in stages:
            x = stage(x)
            if name in wanted:
                out[name] = x
                if len(out) == len(wanted):
                    break
        return {name: out[name] for name in taps}

    def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Args: x: N x 3 x H x W. Returns: {out_feature: N x out_channels x h x w}."""
        return self.features(x, [self.out_feature])


def conv_bn_relu(in_channels: int, out_channels: int, kernel_size: int, stride: int = 1):
    """Conv (no bias), BN, ReLU with 'same' padding: the unit of VGG-BN and NIN."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, stride, kernel_size // 2, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


def init_conv_weights(module: nn.Module) -> None:
    """He initialisation of convs and linears, unit BN: the initialisation of all trunks here."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm, nn.SyncBatchNorm)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
