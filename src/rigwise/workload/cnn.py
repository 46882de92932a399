"""Layer lists of classic CNNs, built from their papers' architecture tables.

* ResNet: He et al., "Deep Residual Learning for Image Recognition", CVPR 2016, Table 1,
  bottleneck blocks for depth >= 50, as torchvision builds them (v1.5: the stride sits in the
  3x3 convolution). torchvision's docs give 25.557 M parameters and 4.09 GFLOPS (G-MACs) for
  ResNet-50, 60.19 M and 11.51 for ResNet-152; our layer lists reproduce both.
* VGG: Simonyan & Zisserman, "Very Deep Convolutional Networks for Large-Scale Image
  Recognition", ICLR 2015, Table 1 configuration D (VGG-16): 138.36 M parameters, 15.47 G-MACs.
"""

from __future__ import annotations

from rigwise.workload.schema import CnnLayer, CnnShape

_RESNET_BLOCKS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3)}
_VGG_CONFIGS = {16: (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
                     512, 512, 512, "M")}


class _Builder:
    def __init__(self, image_size: int, channels: int = 3) -> None:
        self.layers: list[CnnLayer] = []
        self.c = channels
        self.hw = image_size

    def conv(self, name: str, c_out: int, kernel: int, stride: int = 1, *, bias: bool = False,
             bn: bool = True, relu: bool = True) -> None:
        pad = kernel // 2
        h_out = (self.hw + 2 * pad - kernel) // stride + 1
        self.layers.append(CnnLayer("conv", name, self.c, c_out, self.hw, self.hw, h_out, h_out,
                                    kernel, stride, bias=bias))
        self.c, self.hw = c_out, h_out
        if bn:
            self.elementwise("bn", f"{name}.bn")
        if relu:
            self.elementwise("relu", f"{name}.relu")

    def elementwise(self, kind: str, name: str) -> None:
        assert kind in ("bn", "relu", "add")
        self.layers.append(CnnLayer(kind, name, self.c, self.c, self.hw, self.hw,  # type: ignore[arg-type]
                                    self.hw, self.hw))

    def pool(self, name: str, kernel: int, stride: int, pad: int = 0, *,
             global_: bool = False) -> None:
        h_out = 1 if global_ else (self.hw + 2 * pad - kernel) // stride + 1
        self.layers.append(CnnLayer("pool", name, self.c, self.c, self.hw, self.hw, h_out, h_out,
                                    kernel, stride))
        self.hw = h_out

    def linear(self, name: str, c_out: int, *, relu: bool = False) -> None:
        c_in = self.c * self.hw * self.hw
        self.layers.append(CnnLayer("linear", name, c_in, c_out, 1, 1, 1, 1, bias=True))
        self.c, self.hw = c_out, 1
        if relu:
            self.elementwise("relu", f"{name}.relu")


def resnet(depth: int, *, image_size: int = 224, num_classes: int = 1000) -> CnnShape:
    """ResNet-50/101/152 with bottleneck blocks (He et al. 2016, Table 1; torchvision v1.5).

    Raises:
        ValueError: a depth other than 50, 101 or 152.
    """
    if depth not in _RESNET_BLOCKS:
        raise ValueError(f"ResNet depth must be one of {sorted(_RESNET_BLOCKS)}")
    b = _Builder(image_size)
    b.conv("conv1", 64, 7, 2)
    b.pool("maxpool", 3, 2, 1)
    for stage, (blocks, width) in enumerate(zip(_RESNET_BLOCKS[depth], (64, 128, 256, 512),
                                                strict=True)):
        for i in range(blocks):
            stride = 2 if (i == 0 and stage > 0) else 1
            c_in, hw_in = b.c, b.hw
            name = f"layer{stage + 1}.{i}"
            b.conv(f"{name}.conv1", width, 1)
            b.conv(f"{name}.conv2", width, 3, stride)
            b.conv(f"{name}.conv3", width * 4, 1, relu=False)
            if i == 0:
                hw_out, c_out = b.hw, b.c
                b.c, b.hw = c_in, hw_in
                b.conv(f"{name}.downsample", c_out, 1, stride, relu=False)
                b.c, b.hw = c_out, hw_out
            b.elementwise("add", f"{name}.add")
            b.elementwise("relu", f"{name}.relu")
    b.pool("avgpool", b.hw, 1, global_=True)
    b.linear("fc", num_classes)
    return CnnShape(image_size=image_size, layers=tuple(b.layers), num_classes=num_classes)


def vgg(depth: int, *, image_size: int = 224, num_classes: int = 1000) -> CnnShape:
    """VGG-16 (configuration D of Simonyan & Zisserman 2015, Table 1), without batch norm.

    Raises:
        ValueError: a depth other than 16.
    """
    if depth not in _VGG_CONFIGS:
        raise ValueError(f"VGG depth must be one of {sorted(_VGG_CONFIGS)}")
    b = _Builder(image_size)
    for i, item in enumerate(_VGG_CONFIGS[depth]):
        if item == "M":
            b.pool(f"pool{i}", 2, 2)
        else:
            assert isinstance(item, int)
            b.conv(f"conv{i}", item, 3, bias=True, bn=False)
    b.pool("avgpool", 1, 1)  # adaptive pool to 7x7 is the identity at 224 px
    b.linear("fc6", 4096, relu=True)
    b.linear("fc7", 4096, relu=True)
    b.linear("fc8", num_classes)
    return CnnShape(image_size=image_size, layers=tuple(b.layers), num_classes=num_classes)


BUILDERS = {"resnet": resnet, "vgg": vgg}
