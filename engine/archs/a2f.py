"""A2F: Attentive Auxiliary Feature network (Wang et al., ACCV 2020).

A head conv, n blocks, a sub-pixel tail and a sub-pixel skip from the input. Block i computes
x_i = l_x * x_{i-1} + l_res * res(x_{i-1}) + l_aux * CA(P_i(concat(x_0 .. x_{i-1}))), where res is
a WDSR-A block (conv F -> 128, ReLU, conv 128 -> F), P_i a bias-free 1x1 projection (i*F -> F)
and CA a reduction-1 channel attention.

Matches the authors' released code and checkpoints (wxxxxxxh/A2F-SR): the head, block, tail and
skip convolutions are weight-normalised (parameters weight_g, weight_v, bias; the state dict keys
are the authors' ones, typo "auxilary" included), the network works on 0..255 RGB normalised as
(x - 255 * DIV2K mean) / 127.5, and the output is mapped back the same way. Our module takes and
returns 0..1 and does the x255 / /255 around that.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from engine.archs.base import Family, MemoryCost, StateDict, build_from, detect_exact
from engine.archs.pooling import mean_pool

SCALES = (2, 3, 4)
DIV2K_MEAN = (0.4488, 0.4371, 0.4040)
BLOCK_FEATS = 128
STRIPE_BYTES = 32 << 20  # of inner activation a stripe of ResBlock rows makes (see ResBlock)

# variant -> (n_feats, n_blocks); paper Sec. 4.1.
_VARIANTS: dict[str, tuple[int, int]] = {"S": (32, 4), "SD": (16, 8), "M": (32, 12), "L": (32, 16)}


@dataclass(frozen=True)
class A2FConfig:
    variant: str
    scale: int
    n_feats: int
    n_blocks: int
    block_feats: int = BLOCK_FEATS


class WNConv2d(nn.Module):
    """k x k conv (zero padding) with weight normalisation over all dims but the output one:
    weight = weight_g * weight_v / ||weight_v||, the parametrisation of the released checkpoints."""

    def __init__(self, *, in_channels: int, out_channels: int, kernel_size: int = 3) -> None:
        super().__init__()
        self.padding = kernel_size // 2
        weight = torch.empty(out_channels, in_channels, kernel_size, kernel_size)
        nn.init.kaiming_uniform_(weight, a=math.sqrt(5))  # nn.Conv2d's default init
        bound = 1 / math.sqrt(in_channels * kernel_size * kernel_size)
        # bias first: the checkpoints list bias, weight_g, weight_v
        self.bias = nn.Parameter(torch.empty(out_channels).uniform_(-bound, bound))
        # no norm on the meta device (detection, parameter counts): see rgb_mean in A2F
        g = torch.empty(out_channels, 1, 1, 1) if weight.is_meta else _norm_except_dim0(weight)
        self.weight_g = nn.Parameter(g)
        self.weight_v = nn.Parameter(weight)

    def weight(self) -> torch.Tensor:
        # Same operation order as torch's weight_norm: v * (g / ||v||).
        return self.weight_v * (self.weight_g / _norm_except_dim0(self.weight_v))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight(), self.bias, padding=self.padding)


def _norm_except_dim0(v: torch.Tensor) -> torch.Tensor:
    return v.reshape(v.shape[0], -1).norm(dim=1).view(-1, *([1] * (v.dim() - 1)))


class Scale(nn.Module):
    """One learned scalar, initialised to 1."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale


class ChannelAttention(nn.Module):
    def __init__(self, *, channels: int) -> None:
        super().__init__()
        self.conv_du = nn.Sequential(
            nn.Conv2d(channels, channels, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 1),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.conv_du(mean_pool(x))


class ResBlock(nn.Module):
    """WDSR-A body without the identity: conv F -> inner, ReLU, conv inner -> F.

    Without autograd on the CPU (A2F's inference path, channels-last input), the block runs in
    stripes of rows, each with the two rows above and below that its 3x3 convolutions see, so
    that the inner activation (128 channels, 8x the block's input) is never made whole beyond
    STRIPE_BYTES: a tile of 800x800 needs ~1.1 kB a pixel instead of ~1.9 in one stripe
    (bench/bench_a2f_forward.py, BENCHMARKS.md). Stripes of a channels-last input are views of
    it, no copies, and the CPU convolution runs channels-last without converting to and from its
    blocked layout; the stripes give the whole block's values bit for bit."""

    def __init__(self, *, n_feats: int, block_feats: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            WNConv2d(in_channels=n_feats, out_channels=block_feats),
            nn.ReLU(inplace=True),
            WNConv2d(in_channels=block_feats, out_channels=n_feats),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled() or x.device.type != "cpu":
            return self.body(x)
        inner = self.body[0].weight_v.shape[0]
        rows = max(1, STRIPE_BYTES // (inner * x.shape[3] * x.element_size()))
        return self._striped(x, rows)

    def _striped(self, x: torch.Tensor, rows: int) -> torch.Tensor:
        """x (N, C, H, W), any layout -> the block's output, channels-last."""
        first, _, second = self.body
        w1, w2 = first.weight(), second.weight()
        n, c, h, w = x.shape
        padded = x.new_empty(n, h + 4, w, c)  # channels-last, with the zero rows the first conv
        padded[:, :2] = 0  # sees above and below
        padded[:, h + 2 :] = 0
        padded[:, 2 : h + 2] = x.permute(0, 2, 3, 1)
        out = x.new_empty(n, h, w, c)
        for top in range(0, h, rows):
            bottom = min(h, top + rows)
            # inner rows top-1 .. bottom, from input rows top-2 .. bottom+1
            stripe = padded[:, top : bottom + 4].permute(0, 3, 1, 2)
            inner = F.conv2d(stripe, w1, first.bias, padding=(0, 1))
            inner.relu_()
            if top == 0:  # outside the image: the second conv's zero padding
                inner[:, :, 0] = 0
            if bottom == h:
                inner[:, :, -1] = 0
            out[:, top:bottom] = F.conv2d(inner, w2, second.bias, padding=(0, 1)).permute(
                0, 2, 3, 1
            )
        return out.permute(0, 3, 1, 2)


def _subpixel(in_channels: int, scale: int) -> nn.Sequential:
    return nn.Sequential(
        WNConv2d(in_channels=in_channels, out_channels=3 * scale * scale), nn.PixelShuffle(scale)
    )


class A2F(nn.Module):
    def __init__(self, *, scale: int, n_feats: int, n_blocks: int, block_feats: int) -> None:
        super().__init__()
        if scale < 1 or min(n_feats, n_blocks, block_feats) < 1:
            raise ValueError("A2F scale and hyper-parameters must be positive")
        self.scale = scale
        # made on the CPU even when the module is built on the meta device, where any arithmetic
        # imports torch._dynamo (~2 s of every CLI start)
        mean = torch.tensor(DIV2K_MEAN, device="cpu").view(1, 3, 1, 1) * 255.0
        self.register_buffer("rgb_mean", mean, persistent=False)
        # Registration order follows the authors' module, so state_dict() lists keys as theirs do.
        self.x_scale_list = nn.ModuleList(Scale() for _ in range(n_blocks))
        self.res_scale_list = nn.ModuleList(Scale() for _ in range(n_blocks))
        self.auxilary_scale_list = nn.ModuleList(Scale() for _ in range(n_blocks))
        self.head = nn.Sequential(WNConv2d(in_channels=3, out_channels=n_feats))
        self.body = nn.Sequential(
            *(ResBlock(n_feats=n_feats, block_feats=block_feats) for _ in range(n_blocks))
        )
        self.tail = _subpixel(n_feats, scale)
        self.skip = _subpixel(3, scale)
        self.fusion_conv_list = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(n_feats * (i + 1), n_feats, 1, bias=False),
                ChannelAttention(channels=n_feats),
            )
            for i in range(n_blocks)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled():
            x = (x * 255.0 - self.rgb_mean) / 127.5
            return self._output(self._body_training(self.head(x)), x, in_place=False)
        if x.device.type == "cpu":  # see _body_inference
            x = x.contiguous(memory_format=torch.channels_last)
        x = (x * 255.0 - self.rgb_mean) / 127.5
        return self._output(self._body_inference(self.head(x)), x, in_place=True).contiguous()

    def _block(self, i: int, feat: torch.Tensor, states: torch.Tensor) -> torch.Tensor:
        res = self.body[i](feat)
        feat = self.x_scale_list[i](feat) + self.res_scale_list[i](res)
        return feat + self.auxilary_scale_list[i](self.fusion_conv_list[i](states))

    def _body_training(self, feat: torch.Tensor) -> torch.Tensor:
        states = [feat]
        for i in range(len(self.body)):
            feat = self._block(i, feat, torch.cat(states, dim=1))
            states.append(feat)
        return feat

    def _body_inference(self, feat: torch.Tensor) -> torch.Tensor:
        """The same values (to float rounding) without autograd: the block outputs are written
        once into one buffer whose leading channels are the concatenation each block's fusion
        reads, instead of a new concatenation per block (on a 216x541 tile ~0.25 GB of copies
        and ~6% of the time), and the fusion, a bias-free 1x1 conv, is a matrix product on that
        buffer: the CPU's convolution would first copy its input into its own blocked layout,
        8 floats a pixel by the last block, so tiles of the same memory can be ~1.5x larger
        (BENCHMARKS.md). On the CPU everything is channels-last (pixels x channels): the fusion's
        product then reads each pixel's leading channels in place, and the convolutions skip
        their conversions to and from the blocked layout; the forward takes 0.43 instead of
        0.49-0.54 us an output pixel at 256-800 px (bench/bench_a2f_forward.py, BENCHMARKS.md)."""
        n, c = len(self.body), feat.shape[1]
        batch, _, h, w = feat.shape
        states = feat.new_empty(batch, h, w, n * c)  # channels-last
        states[..., :c] = feat.permute(0, 2, 3, 1)
        pixels = states.view(batch * h * w, n * c)
        for i in range(n):
            fusion, attention = self.fusion_conv_list[i]
            k = (i + 1) * c
            mixed = torch.matmul(pixels[:, :k], fusion.weight.view(c, k).t())
            aux = attention(mixed.view(batch, h, w, c).permute(0, 3, 1, 2))
            del mixed
            res = self.body[i](feat)
            feat = self.x_scale_list[i](feat).add_(self.res_scale_list[i](res))
            feat.add_(self.auxilary_scale_list[i](aux))
            if i + 1 < n:
                states[..., k : k + c] = feat.permute(0, 2, 3, 1)
        return feat

    def _output(self, feat: torch.Tensor, x: torch.Tensor, *, in_place: bool) -> torch.Tensor:
        # the skip branch runs last, so its HR-sized output is not held through the body
        if not in_place:
            return ((self.tail(feat) + self.skip(x)) * 127.5 + self.rgb_mean) / 255.0
        out = self.tail(feat)
        del feat
        return out.add_(self.skip(x)).mul_(127.5).add_(self.rgb_mean).div_(255.0)


def config(variant: str, scale: int) -> A2FConfig:
    if variant not in _VARIANTS:
        raise ValueError(f"unknown A2F variant {variant!r}; known: {tuple(_VARIANTS)}")
    if scale not in SCALES:
        raise ValueError(f"A2F supports scales {SCALES}, not {scale}")
    n_feats, n_blocks = _VARIANTS[variant]
    return A2FConfig(variant=variant, scale=scale, n_feats=n_feats, n_blocks=n_blocks)


def build(cfg: A2FConfig) -> A2F:
    return build_from(A2F, cfg)


def _read_config(sd: StateDict) -> A2FConfig | None:
    head, tail = sd.get("head.0.weight_v"), sd.get("tail.0.weight_v")
    if head is None or tail is None or head.ndim != 4 or tail.ndim != 4:
        return None
    n_feats = int(head.shape[0])
    n_blocks = 0
    while f"body.{n_blocks}.body.0.weight_v" in sd:
        n_blocks += 1
    variant = next((v for v, fb in _VARIANTS.items() if fb == (n_feats, n_blocks)), None)
    scale = next((s for s in SCALES if 3 * s * s == tail.shape[0]), None)
    if variant is None or scale is None:
        return None
    cfg = config(variant, scale)
    block_feats = int(sd["body.0.body.0.weight_v"].shape[0])
    return cfg if block_feats == cfg.block_feats else None


def detect(state_dict: StateDict) -> A2FConfig | None:
    """The A2F variant and scale whose module has exactly these keys and shapes, or None."""
    return detect_exact(_read_config, build, state_dict)


FAMILY = Family(
    name="A2F",
    summary="Fastest; for previews and large photos",  # S 1.15x, SD 1.00x
    variant_summaries={
        "M": "More detail than A2F-SD; slow on a CPU",  # 0.34x
        "L": "More detail than A2F-M; slow on a CPU",  # 0.24x
    },
    variants=tuple(_VARIANTS),
    config=config,
    build=build,
    detect=detect,
    input_range=255.0,
    tiling_safe=False,  # the channel attention of every block pools the whole feature map
    # Released SD weights, tiles of 48 (two passes) minus whole image, at 24 -> 16: Set5 x4
    # -0.0008 -> -0.0009 dB, Set14 x4 +0.0000 -> -0.0001, Set5 x2 -0.0002 -> +0.0001, Set14
    # x2 -0.0032 -> -0.0062 (all within 0.01); a 12 MP photo's tiles repeat 1.15x their
    # pixels instead of 1.23x (BENCHMARKS.md)
    tile_overlap=16,
    memory=MemoryCost(
        {  # bench_tiling.py --calibrate --families A2F --sizes 512 768 --threads 2
            "S": {2: 2500, 3: 2600, 4: 2500},
            "SD": {2: 2000, 3: 2100, 4: 2000},
            "M": {2: 4000, 3: 4100, 4: 3800},
            "L": {2: 4600, 3: 4800, 4: 4500},
        }
    ),
    shared_pooling=True,
    scales=SCALES,
)
