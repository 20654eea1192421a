"""Time and memory of one DARTS search step (architecture step + weight step), first and second order.

Ours (``tutorial_nas.oneshot``) is measured beside a plain reference written the way the DARTS code
(quark0/darts, ``model_search.py`` / ``architect.py``) does it: one module per op per edge summed in a Python
loop, ``loss.backward()`` for the first-order architecture step (gradients for every weight too), and for the
second order a fresh copy of the network built for the unrolled weights (with DARTS' momentum and weight
decay in the virtual step). Both run in the same process, alternating, at the profile's ``darts`` sizes.

Memory: on CUDA ``torch.cuda.max_memory_allocated`` over one step; on the CPU the torch profiler with
``profile_memory=True``: the running sum of every op's own allocations and frees, in time order, whose
maximum is the peak of tensor memory live during the step (above what was live before it).

    python benchmarks/darts_step.py            # TUTORIAL_NAS_PROFILE=ci|cpu|gpu picks the sizes
"""

from __future__ import annotations

import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

from tutorial_nas.data import load_dataset
from tutorial_nas.oneshot.architect import Architect
from tutorial_nas.oneshot.darts import DARTS_EDGES, SearchNetwork, search_op
from tutorial_nas.ops import DARTS_OPS, FactorizedReduce, ReLUConvBN
from tutorial_nas.profiles import get_profile

# --- the reference, as the DARTS code writes it ------------------------------------------------------------

class RefMixedOp(nn.Module):
    def __init__(self, C, stride):
        super().__init__()
        self._ops = nn.ModuleList(search_op(name, C, stride) for name in DARTS_OPS)

    def forward(self, x, weights):
        return sum(w * op(x) for w, op in zip(weights, self._ops))


class RefCell(nn.Module):
    def __init__(self, C_pp, C_p, C, reduction, reduction_prev):
        super().__init__()
        self.reduction = reduction
        self.preprocess0 = FactorizedReduce(C_pp, C, affine=False) if reduction_prev else ReLUConvBN(
            C_pp, C, 1, affine=False)
        self.preprocess1 = ReLUConvBN(C_p, C, 1, affine=False)
        self._ops = nn.ModuleList(RefMixedOp(C, 2 if reduction and i < 2 else 1) for i, _ in DARTS_EDGES)

    def forward(self, s0, s1, weights):
        states, offset = [self.preprocess0(s0), self.preprocess1(s1)], 0
        for _ in range(4):
            s = sum(self._ops[offset + j](h, weights[offset + j]) for j, h in enumerate(states))
            offset += len(states)
            states.append(s)
        return torch.cat(states[-4:], dim=1)


class RefNetwork(nn.Module):
    def __init__(self, num_classes, in_channels, C, layers):
        super().__init__()
        self.args = (num_classes, in_channels, C, layers)
        c = 3 * C
        self.stem = nn.Sequential(nn.Conv2d(in_channels, c, 3, padding=1, bias=False), nn.BatchNorm2d(c))
        C_pp, C_p, C_cur, reduction_prev = c, c, C, False
        self.cells = nn.ModuleList()
        for i in range(layers):
            reduction = i in (layers // 3, 2 * layers // 3)
            C_cur = 2 * C_cur if reduction else C_cur
            self.cells.append(RefCell(C_pp, C_p, C_cur, reduction, reduction_prev))
            reduction_prev, C_pp, C_p = reduction, C_p, 4 * C_cur
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(C_p, num_classes)
        self.alphas_normal = nn.Parameter(1e-3 * torch.randn(14, 8))
        self.alphas_reduce = nn.Parameter(1e-3 * torch.randn(14, 8))

    def new(self):
        model = RefNetwork(*self.args).to(self.alphas_normal.device)
        for x, y in zip(model.arch_parameters(), self.arch_parameters()):
            x.data.copy_(y.data)
        return model

    def forward(self, x):
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            weights = F.softmax(self.alphas_reduce if cell.reduction else self.alphas_normal, dim=-1)
            s0, s1 = s1, cell(s0, s1, weights)
        return self.classifier(self.global_pooling(s1).flatten(1))

    def _loss(self, x, y):
        return F.cross_entropy(self(x), y)

    def arch_parameters(self):
        return [self.alphas_normal, self.alphas_reduce]

    def weight_parameters(self):
        return [p for n, p in self.named_parameters() if "alphas" not in n]


class RefArchitect:
    def __init__(self, model, w_opt, momentum=0.9, wd=3e-4):
        self.model, self.w_opt, self.momentum, self.wd = model, w_opt, momentum, wd
        self.optimizer = torch.optim.Adam(model.arch_parameters(), lr=3e-4, betas=(0.5, 0.999),
                                          weight_decay=1e-3)

    def step(self, x_t, y_t, x_v, y_v, eta, unrolled):
        self.optimizer.zero_grad()
        if unrolled:
            self._backward_step_unrolled(x_t, y_t, x_v, y_v, eta)
        else:
            self.model._loss(x_v, y_v).backward()
        self.optimizer.step()

    def _backward_step_unrolled(self, x_t, y_t, x_v, y_v, eta):
        params = self.model.weight_parameters()
        theta = torch.cat([p.data.view(-1) for p in params])
        try:
            buffers = [self.w_opt.state[p]["momentum_buffer"].view(-1) for p in params]
            moment = torch.cat(buffers) * self.momentum
        except KeyError:
            moment = torch.zeros_like(theta)
        grads = torch.autograd.grad(self.model._loss(x_t, y_t), params)
        dtheta = torch.cat([g.view(-1) for g in grads]) + self.wd * theta
        unrolled = self._construct_model_from_theta(theta - eta * (moment + dtheta))
        unrolled._loss(x_v, y_v).backward()
        dalpha = [v.grad for v in unrolled.arch_parameters()]
        vector = [v.grad.data for v in unrolled.weight_parameters()]
        implicit = self._hessian_vector_product(vector, x_t, y_t)
        for g, ig in zip(dalpha, implicit):
            g.data.sub_(eta * ig.data)
        for v, g in zip(self.model.arch_parameters(), dalpha):
            v.grad = g.data.clone()

    def _construct_model_from_theta(self, theta):
        model_new = self.model.new()
        state, offset = self.model.state_dict(), 0
        for k, v in self.model.named_parameters():
            if "alphas" not in k:
                n = v.numel()
                state[k] = theta[offset:offset + n].view(v.size())
                offset += n
        model_new.load_state_dict(state)
        return model_new

    def _hessian_vector_product(self, vector, x, y, r=1e-2):
        R = r / torch.cat([v.view(-1) for v in vector]).norm()
        params = self.model.weight_parameters()
        for p, v in zip(params, vector):
            p.data.add_(R * v)
        grads_p = torch.autograd.grad(self.model._loss(x, y), self.model.arch_parameters())
        for p, v in zip(params, vector):
            p.data.sub_(2 * R * v)
        grads_n = torch.autograd.grad(self.model._loss(x, y), self.model.arch_parameters())
        for p, v in zip(params, vector):
            p.data.add_(R * v)
        return [(x - y).div_(2 * R) for x, y in zip(grads_p, grads_n)]


# --- the measurement ---------------------------------------------------------------------------------------

def setup(impl: str, order: int):
    profile = get_profile()
    sizes = profile.darts
    data = load_dataset(sizes.dataset, image_size=sizes.image_size, device=profile.device)
    torch.manual_seed(0)
    n, b = data.num_classes, sizes.batch_size
    if impl == "ours":
        model = SearchNetwork(n, data.in_channels, C=sizes.C, layers=sizes.layers).to(data.device)
    else:
        model = RefNetwork(n, data.in_channels, sizes.C, sizes.layers).to(data.device)
    w_opt = torch.optim.SGD(model.weight_parameters(), lr=0.025, momentum=0.9, weight_decay=3e-4)
    train = (data.train_x[:b], data.train_y[:b])
    valid = (data.train_x[b:2 * b], data.train_y[b:2 * b])
    if impl == "ours":
        architect = Architect(model, order=order)

        def arch_step():
            architect.step(train, valid, xi=0.025, w_optimizer=w_opt)  # momentum + wd, as the reference
    else:
        architect = RefArchitect(model, w_opt)

        def arch_step():
            architect.step(*train, *valid, eta=0.025, unrolled=order == 2)

    def step():
        arch_step()
        w_opt.zero_grad()
        loss = F.cross_entropy(model(train[0]), train[1])
        loss.backward()
        nn.utils.clip_grad_norm_(model.weight_parameters(), 5.0)
        w_opt.step()
        if data.device.type == "cuda":
            torch.cuda.synchronize()

    return step, data.device


def memory_of_one_step(step, device) -> float:
    """MiB of tensor memory live at the peak of one step, above what was live before it."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        step()
        return (torch.cuda.max_memory_allocated() - base) / 2**20
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        step()
    live = peak = 0
    for event in sorted(prof.events(), key=lambda e: e.time_range.start):
        live += event.self_cpu_memory_usage
        peak = max(peak, live)
    return peak / 2**20


def main(repeats: int = 3):
    profile = get_profile()
    print(f"profile {profile.name}: {profile.darts}; device {profile.device}; torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")
    print(f"{'order':>5} {'impl':>9} {'median s/step':>14} {'peak MiB':>9}")
    for order in (1, 2):
        steps = {impl: setup(impl, order)[0] for impl in ("reference", "ours")}
        for s in steps.values():
            s()  # warm up
        times = {impl: [] for impl in steps}
        for _ in range(repeats):  # alternate, so that a slow moment of the machine hits both
            for impl, s in steps.items():
                t = time.perf_counter()
                s()
                times[impl].append(time.perf_counter() - t)
        med = {impl: statistics.median(ts) for impl, ts in times.items()}
        mem = {impl: memory_of_one_step(s, profile.device) for impl, s in steps.items()}
        for impl in steps:
            print(f"{order:>5} {impl:>9} {med[impl]:>14.3f} {mem[impl]:>9.1f}")
        print(f"      ours / reference: time x{med['ours'] / med['reference']:.2f}, "
              f"memory x{mem['ours'] / max(mem['reference'], 1e-9):.2f}")


if __name__ == "__main__":
    main()
