"""The candidate operations, by their canonical names.

``NB201_OPS`` are the five operations of NAS-Bench-201 (AutoDL's order and names); ``DARTS_OPS`` the eight
PRIMITIVES of the DARTS code. Build one with ``nb201_op(name, C)`` or ``darts_op(name, C, stride)``: names,
never indices, since other libraries order and name them differently.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from .errors import check_choice

NB201_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
DARTS_OPS = ("none", "max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3", "sep_conv_5x5",
             "dil_conv_3x3", "dil_conv_5x5")


class Zero(nn.Module):
    """The ``none`` operation: no connection. With a stride it also shrinks the map."""

    def __init__(self, stride: int = 1):
        super().__init__()
        self.stride = stride

    def forward(self, x):
        if self.stride == 1:
            return x.mul(0.0)
        return x[:, :, :: self.stride, :: self.stride].mul(0.0)


class ReLUConvBN(nn.Sequential):
    """ReLU, convolution, batch norm: NAS-Bench-201's ``nor_conv`` and the DARTS preprocessing."""

    def __init__(self, c_in, c_out, kernel, stride=1, padding=0, dilation=1, affine=True):
        super().__init__(nn.ReLU(inplace=False),
                         nn.Conv2d(c_in, c_out, kernel, stride, padding, dilation=dilation, bias=False),
                         nn.BatchNorm2d(c_out, affine=affine))


class DilConv(nn.Sequential):
    """ReLU, depthwise dilated convolution, pointwise convolution, batch norm."""

    def __init__(self, c_in, c_out, kernel, stride, padding, dilation, affine=True):
        super().__init__(nn.ReLU(inplace=False),
                         nn.Conv2d(c_in, c_in, kernel, stride, padding, dilation=dilation, groups=c_in,
                                   bias=False),
                         nn.Conv2d(c_in, c_out, 1, bias=False),
                         nn.BatchNorm2d(c_out, affine=affine))


class SepConv(nn.Sequential):
    """Two stacked depthwise-separable convolutions, the first carrying the stride (as in DARTS)."""

    def __init__(self, c_in, c_out, kernel, stride, padding, affine=True):
        super().__init__(DilConv(c_in, c_in, kernel, stride, padding, 1, affine),
                         DilConv(c_in, c_out, kernel, 1, padding, 1, affine))


class FactorizedReduce(nn.Module):
    """Halve the map with two offset stride-2 1x1 convolutions, concatenated (DARTS' strided skip)."""

    def __init__(self, c_in, c_out, affine=True):
        super().__init__()
        self.relu = nn.ReLU(inplace=False)
        self.conv1 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.conv2 = nn.Conv2d(c_in, c_out - c_out // 2, 1, stride=2, bias=False)
        self.bn = nn.BatchNorm2d(c_out, affine=affine)

    def forward(self, x):
        x = self.relu(x)
        shifted = nn.functional.pad(x[:, :, 1:, 1:], (0, 1, 0, 1))  # odd sizes: pad the shifted map back
        return self.bn(torch.cat([self.conv1(x), self.conv2(shifted)], dim=1))


def nb201_op(name: str, C: int, affine: bool = True) -> nn.Module:
    """One NAS-Bench-201 operation on ``C`` channels, stride 1 (cells never change the map size)."""
    check_choice("NAS-Bench-201 operation", name, NB201_OPS)
    if name == "none":
        return Zero()
    if name == "skip_connect":
        return nn.Identity()
    if name == "nor_conv_1x1":
        return ReLUConvBN(C, C, 1, 1, 0, affine=affine)
    if name == "nor_conv_3x3":
        return ReLUConvBN(C, C, 3, 1, 1, affine=affine)
    return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)


def darts_op(name: str, C: int, stride: int = 1, affine: bool = True) -> nn.Module:
    """One DARTS primitive on ``C`` channels; ``stride=2`` on the input edges of a reduction cell."""
    check_choice("DARTS operation", name, DARTS_OPS)
    if name == "none":
        return Zero(stride)
    if name == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=stride, padding=1, count_include_pad=False)
    if name == "max_pool_3x3":
        return nn.MaxPool2d(3, stride=stride, padding=1)
    if name == "skip_connect":
        return nn.Identity() if stride == 1 else FactorizedReduce(C, C, affine)
    kernel = int(name[-1])
    if name.startswith("sep_conv"):
        return SepConv(C, C, kernel, stride, kernel // 2, affine)
    return DilConv(C, C, kernel, stride, kernel - 1, 2, affine)
