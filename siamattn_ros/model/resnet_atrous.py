"""Atrous ResNet-50 backbone of the paper (stride 8 for the three deep levels), keys as in the authors' model.

Differs from torchvision's resnet50: stem conv without padding, stride-2 3x3 without padding in layer2, 3x3 projection
shortcuts in layers 2-4, and dilation instead of stride in layers 3-4 (spec section 2).
"""
from __future__ import annotations

from typing import List, Optional

import torch
from torch import nn


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, dilation: int = 1,
                 downsample: Optional[nn.Module] = None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        # A stride-2 3x3 conv has no padding (keeps 31 -> 15 / 63 -> 31 as in the paper); a block that owns the
        # shortcut conv and is dilated uses half the layer dilation (the "dd" rule of the atrous ResNet).
        padding = 0 if stride == 2 else dilation
        if downsample is not None and dilation > 1:
            dilation = dilation // 2
            padding = dilation
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=padding, dilation=dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        out += residual  # in place, as the authors' block (autograd-safe: neither conv nor BN backward needs it)
        return self.relu(out)


class ResNet50Atrous(nn.Module):
    """Returns 5 levels: stem (64, s2), layer1 (256, s4), layer2 (512, s8), layer3 (1024, s8), layer4 (2048, s8)."""

    out_channels = (64, 256, 512, 1024, 2048)

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=0, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.inplanes = 64
        self.layer1 = self._make_layer(64, 3)
        self.layer2 = self._make_layer(128, 4, stride=2)
        self.layer3 = self._make_layer(256, 6, dilation=2)
        self.layer4 = self._make_layer(512, 3, dilation=4)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def _make_layer(self, planes: int, blocks: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
        out = planes * Bottleneck.expansion
        if stride == 1 and dilation == 1:
            shortcut = nn.Conv2d(self.inplanes, out, 1, bias=False)
        elif stride > 1:
            shortcut = nn.Conv2d(self.inplanes, out, 3, stride=stride, padding=0, bias=False)
        else:
            d = dilation // 2
            shortcut = nn.Conv2d(self.inplanes, out, 3, stride=1, padding=d, dilation=d, bias=False)
        downsample = nn.Sequential(shortcut, nn.BatchNorm2d(out))
        layers = [Bottleneck(self.inplanes, planes, stride, dilation, downsample)]
        self.inplanes = out
        layers += [Bottleneck(out, planes, dilation=dilation) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:
        l0 = self.relu(self.bn1(self.conv1(x)))
        l1 = self.layer1(self.maxpool(l0))
        l2 = self.layer2(l1)
        l3 = self.layer3(l2)
        l4 = self.layer4(l3)
        return [l0, l1, l2, l3, l4]
