"""The global chain-structured space of the early papers (Zoph & Le 2017; MetaQNN, Baker et al. 2017).

A network is a sequence of 1..max_layers convolution layers (0..max_layers with ``min_layers=0``: the
conv-free network, written ``linear``, is where large-scale evolution starts). Each layer picks a filter
size, a number of filters and a way to shrink the map (``none``, ``max_pool_2x2`` after the convolution, or
``stride_2`` in it), and reads any set of earlier layers: the controller of Zoph & Le decides, at every
layer, one yes/no "anchor" per earlier layer. A plain chain is the special case where layer i reads layer i-1 only.

Where shapes differ the network does what Zoph & Le did: the smaller maps are padded with zeros to the
largest spatial size and everything is concatenated along the channels. A layer that reads no layer reads
the image; at the end every layer that no other layer reads is concatenated, globally averaged and fed to a
linear classifier.

An architecture is a tuple of ``Layer`` namedtuples, written as a string such as

    conv3x3-16<in | conv5x5-32-max_pool_2x2<0 | conv1x1-16-stride_2<0,1

(layer 0 reads the image, layer 1 reads layer 0, layer 2 reads layers 0 and 1). ``mutation`` changes one
thing (the structural mutations of large-scale evolution) and says which layer of the parent each layer of
the child copies, so that a child can inherit its parent's weights (``ChainNetwork.inherit``).
"""

from __future__ import annotations

import re
from typing import NamedTuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import NASInputError, check_choice
from .base import Decision, SearchSpace

KERNELS = (1, 3, 5)
POOLS = ("none", "max_pool_2x2", "stride_2")
MUTATIONS = ("add_layer", "remove_layer", "add_skip", "remove_skip", "alter_kernel", "alter_filters",
             "alter_pool")  # the structural mutations of large-scale evolution (Real et al. 2017)
EMPTY = "linear"  # the network without a convolution: the image, globally averaged, into the classifier
FORM = (f"conv{{k}}x{{k}}-{{filters}}[-{{pool}}]<{{inputs}} joined by ' | ', e.g. 'conv3x3-16<in | conv5x5-32<0' "
        f"(or {EMPTY!r}, no layer at all, in a space with min_layers=0)")
_LAYER_RE = re.compile(r"^conv(\d+)x(\d+)-(\d+)(?:-([a-z0-9_]+))?<(in|\d+(?:,\d+)*)$")


class Layer(NamedTuple):
    """One convolution layer: ``inputs`` are the earlier layers it reads (empty: it reads the image)."""

    kernel: int
    filters: int
    pool: str
    inputs: tuple = ()


class Mutation(NamedTuple):
    """A child, the mutation that made it, and for each of its layers the parent layer it copies (None: new)."""

    arch: tuple
    kind: str | None
    origins: tuple


def plain_chain(specs) -> tuple:
    """The chain without skips (what MetaQNN builds): layer i reads layer i-1, layer 0 the image."""
    return tuple(Layer(k, f, p, (i - 1,) if i else ()) for i, (k, f, p) in enumerate(specs))


def consumers(arch) -> list:
    """For each layer, the later layers that read it."""
    out = [[] for _ in arch]
    for i, layer in enumerate(arch):
        for j in layer.inputs:
            out[j].append(i)
    return out


# --------------------------------------------------------------------------------------------- the network

def pad_concat(maps: list) -> torch.Tensor:
    """Zero-pad every map to the largest height and width (centred) and concatenate along the channels."""
    h = max(m.shape[-2] for m in maps)
    w = max(m.shape[-1] for m in maps)
    padded = []
    for m in maps:
        dh, dw = h - m.shape[-2], w - m.shape[-1]
        padded.append(F.pad(m, (dw // 2, dw - dw // 2, dh // 2, dh - dh // 2)) if dh or dw else m)
    return torch.cat(padded, dim=1)


class ChainLayer(nn.Module):
    """Convolution, batch norm, ReLU, then the layer's way of shrinking the map.

    The shrinking never goes below 1x1: a stride-2 convolution of a 1x1 map stays 1x1, and the 2x2 max-pool
    is skipped when the map is already smaller than 2x2, so any architecture runs on 8x8 digits as well as
    on 32x32 images.
    """

    def __init__(self, layer: Layer, c_in: int):
        super().__init__()
        stride = 2 if layer.pool == "stride_2" else 1
        self.conv = nn.Conv2d(c_in, layer.filters, layer.kernel, stride, layer.kernel // 2, bias=False)
        self.bn = nn.BatchNorm2d(layer.filters)
        self.max_pool = layer.pool == "max_pool_2x2"

    def forward(self, x):
        x = F.relu(self.bn(self.conv(x)))
        if self.max_pool and min(x.shape[-2:]) >= 2:
            x = F.max_pool2d(x, 2, 2, ceil_mode=True)
        return x


class ChainNetwork(nn.Module):
    """The network of a chain architecture, for any input size and number of channels."""

    def __init__(self, arch: tuple, num_classes: int, in_channels: int = 3):
        super().__init__()
        self.arch = tuple(arch)
        widths = []
        layers = []
        for layer in self.arch:
            c_in = sum(widths[j] for j in layer.inputs) if layer.inputs else in_channels
            layers.append(ChainLayer(layer, c_in))
            widths.append(layer.filters)
        self.layers = nn.ModuleList(layers)
        self.outputs = [i for i, used in enumerate(consumers(self.arch)) if not used]
        self.classifier = nn.Linear(sum(widths[i] for i in self.outputs) if self.arch else in_channels, num_classes)

    def forward(self, x):
        maps = []
        for layer, module in zip(self.arch, self.layers):
            inp = pad_concat([maps[j] for j in layer.inputs]) if layer.inputs else x
            maps.append(module(inp))
        out = pad_concat([maps[i] for i in self.outputs]) if maps else x  # no layer: the image itself
        return self.classifier(out.mean(dim=(2, 3)))

    def inherit(self, parent_state: dict, origins) -> list:
        """Load every tensor of ``parent_state`` (a parent's ``state_dict``) whose shape matches, layer ``i``
        taking the tensors of parent layer ``origins[i]`` (None: none) and the classifier the classifier's.

        This is weight inheritance as Real et al. (2017, Section 3) describe it: a child keeps its parent's
        weights wherever the shapes match, so a mutation that leaves a layer alone leaves its weights alone.
        Returns the names of the tensors taken.
        """
        if len(origins) != len(self.layers):
            raise NASInputError(f"origins name a parent layer for each of the {len(self.layers)} layers, "
                                f"got {len(origins)}")
        state, taken = self.state_dict(), []
        for name, tensor in state.items():
            source = name
            if name.startswith("layers."):
                _, i, rest = name.split(".", 2)
                j = origins[int(i)]
                if j is None:
                    continue
                source = f"layers.{j}.{rest}"
            old = parent_state.get(source)
            if old is not None and old.shape == tensor.shape:
                state[name] = old
                taken.append(name)
        self.load_state_dict(state)
        return taken


# ----------------------------------------------------------------------------------------------- the space

class ChainSpace(SearchSpace):
    """Chains of ``min_layers``..``max_layers`` layers, each with a kernel, a filter count, a pool and its inputs.

    ``min_layers=0`` adds the network without a convolution (``linear``), the start of large-scale evolution.
    """

    name = "chain"
    mutations = MUTATIONS

    def __init__(self, max_layers: int = 6, filters=(16, 32, 64), kernels=KERNELS, pools=POOLS, min_layers: int = 1):
        if not isinstance(max_layers, int) or isinstance(max_layers, bool) or max_layers < 1:
            raise NASInputError(f"max_layers must be a whole number of at least 1, got {max_layers!r}")
        if not isinstance(min_layers, int) or isinstance(min_layers, bool) or not 0 <= min_layers <= max_layers:
            raise NASInputError(f"min_layers must be a whole number from 0 to max_layers ({max_layers}), "
                                f"got {min_layers!r}")
        self.max_layers, self.min_layers = max_layers, min_layers
        self.filters = self._options("filters", filters)
        self.kernels = self._options("kernels", kernels)
        for k in self.kernels:
            if k % 2 == 0:
                raise NASInputError(f"kernel sizes must be odd (the padding keeps the map size), got {k}")
        self.pools = tuple(pools)
        for p in self.pools:
            check_choice("pool", p, POOLS)
        if not self.pools:
            raise NASInputError(f"pools must name at least one of {', '.join(POOLS)}")

    @staticmethod
    def _options(kind, values) -> tuple:
        values = tuple(values)
        if not values or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v > 0
                                 for v in values):
            raise NASInputError(f"{kind} must be a non-empty list of positive whole numbers, got {values!r}")
        return tuple(int(v) for v in values)

    def __repr__(self):
        return (f"ChainSpace(max_layers={self.max_layers}, filters={self.filters}, kernels={self.kernels}, "
                f"pools={self.pools}, min_layers={self.min_layers})")

    # -- how many architectures, and how to draw one
    def size(self) -> int:
        """Exactly: a depth-d chain has (K*F*P)**d layer choices and 2**(d(d-1)/2) sets of connections."""
        per_layer = len(self.kernels) * len(self.filters) * len(self.pools)
        return sum(per_layer ** d * 2 ** (d * (d - 1) // 2) for d in range(self.min_layers, self.max_layers + 1))

    def _random_layer(self, rng, inputs=()) -> Layer:
        kernel = self.kernels[rng.integers(len(self.kernels))]
        filters = self.filters[rng.integers(len(self.filters))]
        return Layer(kernel, filters, self.pools[rng.integers(len(self.pools))], tuple(inputs))

    def sample(self, rng):
        """As an untrained controller draws: depth, kernel, filters and pool uniform, each anchor a coin."""
        depth = int(rng.integers(self.min_layers, self.max_layers + 1))
        arch = []
        for i in range(depth):
            arch.append(self._random_layer(rng, [j for j in range(i) if rng.random() < 0.5]))
        return tuple(arch)

    # -- the mutations of large-scale evolution
    def applicable_mutations(self, arch) -> list:
        """The mutation kinds that can change ``arch`` (a chain at ``min_layers`` has no layer to remove...)."""
        n = len(arch)
        links = sum(len(layer.inputs) for layer in arch)
        ok = {"add_layer": n < self.max_layers, "remove_layer": n > self.min_layers,
              "add_skip": links < n * (n - 1) // 2, "remove_skip": links > 0,
              "alter_kernel": n > 0 and len(self.kernels) > 1, "alter_filters": n > 0 and len(self.filters) > 1,
              "alter_pool": n > 0 and len(self.pools) > 1}
        return [kind for kind in MUTATIONS if ok[kind]]

    def mutate(self, arch, rng, kind: str | None = None):
        """``arch`` changed by one mutation of ``kind`` (one of ``MUTATIONS``; at random if not given)."""
        return self.mutation(arch, rng, kind).arch

    def mutation(self, arch, rng, kind: str | None = None) -> Mutation:
        """As ``mutate``, with the kind drawn and, per layer of the child, the parent layer it copies."""
        arch = tuple(arch)
        possible = self.applicable_mutations(arch)
        if kind is None:
            if not possible:
                return Mutation(arch, None, tuple(range(len(arch))))
            kind = possible[int(rng.integers(len(possible)))]
        check_choice("mutation", kind, MUTATIONS)
        if kind not in possible:
            raise NASInputError(f"mutation {kind!r} cannot change {self.to_str(arch)!r} in {self!r}; "
                                f"possible here: {', '.join(possible) or 'none'}")
        if kind in ("add_layer", "remove_layer"):
            child, origins = getattr(self, f"_{kind}")(arch, rng)
        else:  # the layers stay where they are
            child, origins = getattr(self, f"_{kind}")(arch, rng), tuple(range(len(arch)))
        return Mutation(child, kind, origins)

    def _add_layer(self, arch, rng):
        """Insert a layer at position p: it reads layer p-1 (or the image); the layer after it reads it.

        As Real et al.'s insert-convolution: 3x3 filters, stride 1 or 2 at random and as many filters as its
        input has channels, each where this space allows it (else drawn from the space). With the width kept,
        the layer after it reads as many channels as before, and keeps its weights.
        """
        p = int(rng.integers(len(arch) + 1))
        shift = [j if j < p else j + 1 for j in range(len(arch))]
        out = [layer._replace(inputs=tuple(shift[j] for j in layer.inputs)) for layer in arch]
        if p < len(arch):
            after = set(out[p].inputs) - {p - 1} | {p}
            out[p] = out[p]._replace(inputs=tuple(sorted(after)))
        kernel = 3 if 3 in self.kernels else self.kernels[int(rng.integers(len(self.kernels)))]
        strides = [q for q in ("none", "stride_2") if q in self.pools] or list(self.pools)
        width = arch[p - 1].filters if p else None
        filters = width if width in self.filters else self.filters[int(rng.integers(len(self.filters)))]
        out.insert(p, Layer(kernel, filters, strides[int(rng.integers(len(strides)))], (p - 1,) if p else ()))
        return tuple(out), tuple(range(p)) + (None,) + tuple(range(p, len(arch)))

    def _remove_layer(self, arch, rng):
        """Remove layer p; the layers that read it read its inputs instead, so no path is cut."""
        p = int(rng.integers(len(arch)))
        out = []
        for i, layer in enumerate(arch):
            if i == p:
                continue
            inputs = set(layer.inputs)
            if p in inputs:
                inputs = inputs - {p} | set(arch[p].inputs)
            out.append(layer._replace(inputs=tuple(sorted(j if j < p else j - 1 for j in inputs))))
        return tuple(out), tuple(i for i in range(len(arch)) if i != p)

    def _add_skip(self, arch, rng):
        missing = [(j, i) for i, layer in enumerate(arch) for j in range(i) if j not in layer.inputs]
        j, i = missing[int(rng.integers(len(missing)))]
        return self._set_inputs(arch, i, sorted(arch[i].inputs + (j,)))

    def _remove_skip(self, arch, rng):
        present = [(j, i) for i, layer in enumerate(arch) for j in layer.inputs]
        j, i = present[int(rng.integers(len(present)))]
        return self._set_inputs(arch, i, [k for k in arch[i].inputs if k != j])

    def _alter(self, arch, rng, field, options):
        i = int(rng.integers(len(arch)))
        others = [v for v in options if v != getattr(arch[i], field)]
        new = arch[i]._replace(**{field: others[int(rng.integers(len(others)))]})
        return arch[:i] + (new,) + arch[i + 1:]

    def _alter_kernel(self, arch, rng):
        return self._alter(arch, rng, "kernel", self.kernels)

    def _alter_filters(self, arch, rng):
        return self._alter(arch, rng, "filters", self.filters)

    def _alter_pool(self, arch, rng):
        return self._alter(arch, rng, "pool", self.pools)

    @staticmethod
    def _set_inputs(arch, i, inputs):
        return arch[:i] + (arch[i]._replace(inputs=tuple(inputs)),) + arch[i + 1:]

    def crossover(self, a, b, rng):
        """Layer-wise uniform crossover: the child has the depth of one parent and each layer from either.

        Layer i of either parent reads only layers below i, which the child has, so the child is valid.
        """
        long, short = (a, b) if len(a) >= len(b) else (b, a)
        depth = len(a) if rng.random() < 0.5 else len(b)
        return tuple((long[i] if i >= len(short) or rng.random() < 0.5 else short[i]) for i in range(depth))

    # -- strings
    def to_str(self, arch) -> str:
        if not arch:
            return EMPTY
        parts = []
        for layer in arch:
            pool = "" if layer.pool == "none" else f"-{layer.pool}"
            inputs = ",".join(str(j) for j in layer.inputs) if layer.inputs else "in"
            parts.append(f"conv{layer.kernel}x{layer.kernel}-{layer.filters}{pool}<{inputs}")
        return " | ".join(parts)

    def parse(self, text: str):
        if not isinstance(text, str) or not text.strip():
            raise NASInputError(f"a chain architecture string must be a non-empty str, got {text!r}; "
                                f"the form is {FORM}")
        if text.strip() == EMPTY:
            if self.min_layers > 0:
                raise NASInputError(f"{EMPTY!r} (no layer) is not in this space, whose chains have at least "
                                    f"{self.min_layers} layer(s); ChainSpace(min_layers=0) holds it")
            return ()
        parts = [p.strip() for p in text.split("|")]
        if len(parts) > self.max_layers:
            raise NASInputError(f"{text!r} has {len(parts)} layers; this space allows at most "
                                f"{self.max_layers}")
        if len(parts) < self.min_layers:
            raise NASInputError(f"{text!r} has {len(parts)} layer(s); this space needs at least {self.min_layers}")
        arch = []
        for i, part in enumerate(parts):
            m = _LAYER_RE.match(part.replace(" ", ""))
            if not m:
                raise NASInputError(f"layer {i} of {text!r} is {part!r}, which is not of the form {FORM}")
            kh, kw, filters, pool, inputs = m.groups()
            if kh != kw:
                raise NASInputError(f"layer {i} of {text!r}: kernels are square, got {kh}x{kw}")
            check_choice(f"kernel size (layer {i})", int(kh), self.kernels)
            check_choice(f"number of filters (layer {i})", int(filters), self.filters)
            check_choice(f"pool (layer {i})", pool or "none", self.pools)
            inputs = () if inputs == "in" else tuple(int(j) for j in inputs.split(","))
            if list(inputs) != sorted(set(inputs)) or any(j >= i for j in inputs):
                raise NASInputError(f"layer {i} of {text!r} reads {inputs}; a layer reads earlier layers "
                                    f"(0..{i - 1}), each once, in increasing order, or 'in' for the image")
            arch.append(Layer(int(kh), int(filters), pool or "none", inputs))
        return tuple(arch)

    # -- encoding and building
    def encode(self, arch) -> np.ndarray:
        """Per layer slot: present, one-hot kernel, filters, pool; then one bit per possible connection."""
        width = 1 + len(self.kernels) + len(self.filters) + len(self.pools)
        slots = np.zeros((self.max_layers, width), dtype=np.float32)
        links = np.zeros(self.max_layers * (self.max_layers - 1) // 2, dtype=np.float32)
        for i, layer in enumerate(arch):
            slots[i, 0] = 1
            slots[i, 1 + self.kernels.index(layer.kernel)] = 1
            slots[i, 1 + len(self.kernels) + self.filters.index(layer.filters)] = 1
            slots[i, 1 + len(self.kernels) + len(self.filters) + self.pools.index(layer.pool)] = 1
            for j in layer.inputs:
                links[i * (i - 1) // 2 + j] = 1
        return np.concatenate([slots.ravel(), links])

    def to_model(self, arch, num_classes: int, in_channels: int, **_) -> nn.Module:
        """The network; the filter counts are in the architecture, so no size is needed."""
        return ChainNetwork(arch, num_classes, in_channels)

    # -- the token interface: depth, then per layer kernel, filters, pool and one anchor per earlier layer
    def _layer_tokens(self, i: int) -> int:
        return 3 + i

    def next_decision(self, tokens):
        if not tokens:
            return Decision("depth", tuple(range(self.min_layers, self.max_layers + 1)), "depth")
        depth, pos = tokens[0] + self.min_layers, len(tokens) - 1
        for i in range(depth):
            if pos < self._layer_tokens(i):
                if pos < 3:
                    group, choices = (("kernel", self.kernels), ("filters", self.filters),
                                      ("pool", self.pools))[pos]
                    return Decision(f"layer {i} {group}", choices, group, target=i)
                j = pos - 3
                return Decision(f"layer {i} reads layer {j}", ("no", "yes"), "anchor", kind="anchor",
                                target=i, source=j)
            pos -= self._layer_tokens(i)
        return None

    def from_tokens(self, tokens):
        depth, pos, arch = tokens[0] + self.min_layers, 1, []
        for i in range(depth):
            k, f, p = tokens[pos:pos + 3]
            anchors = tokens[pos + 3:pos + 3 + i]
            arch.append(Layer(self.kernels[k], self.filters[f], self.pools[p],
                              tuple(j for j, yes in enumerate(anchors) if yes)))
            pos += self._layer_tokens(i)
        return tuple(arch)

    def to_tokens(self, arch):
        tokens = [len(arch) - self.min_layers]
        for i, layer in enumerate(arch):
            tokens += [self.kernels.index(layer.kernel), self.filters.index(layer.filters),
                       self.pools.index(layer.pool)]
            tokens += [int(j in layer.inputs) for j in range(i)]
        return tokens
