"""Budget profiles, device choice and seeding: one switch sets the cost of every chapter.

``TUTORIAL_NAS_PROFILE`` is ``ci`` (a few minutes for all four chapters on two CPU cores, still real data),
``cpu`` (what a learner runs on a laptop) or ``gpu`` (full size on a Colab GPU). Without the variable the
profile is ``gpu`` when CUDA is there and ``cpu`` otherwise.

Every size that sets what a chapter costs lives in ``PROFILES`` below, grouped by section, so a notebook
reads ``profile.chain.max_layers`` and never hard-codes a number.
"""

from __future__ import annotations

import os
import random
import sys
from dataclasses import dataclass

import numpy as np
import torch

from .errors import NASInputError, check_choice

ENV_VAR = "TUTORIAL_NAS_PROFILE"

# One table: profile -> section -> size. Read top to bottom to see what each profile pays for.
PROFILES: dict[str, dict[str, dict]] = {
    "ci": {
        "data": dict(dataset="digits", image_size=8),
        "train": dict(epochs=3, batch_size=128, lr=0.05),
        "chain": dict(max_layers=4, filters=(8, 16, 32), dataset="digits", image_size=8, epochs=3, batch_size=32,
                      lr=0.1, budget=6, population=3,
                      genetic_nodes=(3, 4), exercise_seeds=2, exercise_epochs=1, exercise_candidates=4,
                      exercise_bench_seeds=3, exercise_bench_budget=40),
        "cell": dict(C=8, N=1, stem_stride=2, dataset="mnist5k", image_size=14),
        "darts": dict(C=4, layers=3, N=1, epochs=2, batch_size=64, dataset="digits", image_size=8,
                      train_epochs=3, nb201_epochs=3, data_fraction=0.4, gdas_epochs=4, gdas_nb201_epochs=6),
        # nsas off: at these 2 epochs its supernet stays near chance (14 % measured) and would add ~5 s
        "oneshot": dict(epochs=2, batch_size=128, eval_cells=15, controller_steps=10, train_epochs=1,
                        early_epoch=1, predictor_cells=200, proxy_batch=64, morph_steps=2, morph_children=3,
                        morph_epochs=1, nsas=False, hier_epochs=0.5, hier_budget=2, blockqnn_budget=60,
                        mask_epochs=0.5),
        # budget_trainings: the look-up strategies' budget in mean cell trainings of the table (~100 look-ups a
        # run, whatever a cell cost to train; compare.profile_budget); budget_s: the same on a table of 1.40 s a
        # cell, for the plan and the figures. The supernets' epochs: oneshot_epochs (DARTS), gdas_, rsws_epochs.
        # strategies: BlockQNN (Q-learning over the cell's edges) measured at ~0.2 s a seed, REINFORCE ~1.5 s.
        "compare": dict(seeds=30, budget_trainings=100, budget_s=140, trials=100,
                        strategies=("random", "regularized", "reinforce", "reinforce-nb201", "bo", "blockqnn"),
                        oneshot=("darts", "gdas", "rsws"), oneshot_seeds=2, oneshot_epochs=1, gdas_epochs=1,
                        rsws_epochs=2, oneshot_candidates=10, oneshot_batch_size=64, oneshot_dataset="digits",
                        oneshot_image_size=8, oneshot_stem_stride=1),
        "future": dict(trick_cells=1, trick_seeds=1, search_seeds=1, search_budget=30,
                       tricks=("baseline", "label_smoothing"), longer=2, cutout_size=4,
                       darts_epochs=3, darts_fraction=0.5, darts_N=1, darts_arch_lr=3e-2, ws_epochs=3,
                       ws_checkpoints=(1, 3), ws_cells=8, ws_batch=64, forget_cells=3, forget_epochs=1,
                       forget_steps=6, latency_cells=12, latency_repeats=5, search_cycles=40, dpp_keep=2),
        # `tutorial-nas figures` (the slides' figures): the chapters' functions, ci well under a minute on 2 cores
        "figures": dict(chain_candidates=2, darts_epochs=2,
                        compare_strategies=("random", "regularized", "reinforce", "bo"), compare_seeds=6),
    },
    "cpu": {
        "data": dict(dataset="mnist5k", image_size=14),
        "train": dict(epochs=5, batch_size=128, lr=0.05),
        "chain": dict(max_layers=6, filters=(16, 32, 64), dataset="mnist5k", image_size=14, epochs=4,
                      batch_size=64, lr=0.1, budget=20,
                      population=8, genetic_nodes=(3, 4, 5),
                      # chapter 1's solutions: searches of `budget` candidates at `exercise_epochs` epochs over
                      # `exercise_seeds` seeds, then `exercise_bench_seeds` x `exercise_bench_budget` look-ups
                      exercise_seeds=3, exercise_epochs=1, exercise_candidates=10, exercise_bench_seeds=10,
                      exercise_bench_budget=300),
        "cell": dict(C=8, N=1, stem_stride=2, dataset="mnist5k", image_size=14),
        # the DARTS space at layers=5, 8 epochs, all of mnist5k: 107 s an epoch first order, 280 s second
        # order on 2 cores; these sizes keep chapter 2 within its 20 minutes. GDAS, about a fifth of DARTS'
        # cost an epoch, runs 4x the epochs (its paper: 240 epochs to DARTS' 50); the chapter scales the
        # architecture learning rate to the steps (oneshot.architect.scaled_arch_lr)
        "darts": dict(C=8, layers=3, N=1, epochs=3, batch_size=64, dataset="mnist5k", image_size=14,
                      train_epochs=5, nb201_epochs=10, data_fraction=0.5, gdas_epochs=12, gdas_nb201_epochs=40),
        # hierarchical networks: 2 epochs at batch 64, lr 0.1 (measured on mnist5k at 14 px: the random genotypes
        # of seeds 0 and 1 at 71 % and 47 % validation)
        # the supernets of the shortcut table: 40 epochs of 16 steps, enough for shared weights far above
        # chance (8 epochs of a uniform single-path supernet leave it near 34 %); NSAS, up to nine passes a
        # step: in chapter 2's idle cpu run its row took 71 s against SPOS' 16 s (shared weights at 82 % on
        # average)
        "oneshot": dict(epochs=40, batch_size=64, eval_cells=100, controller_steps=10, train_epochs=1,
                        early_epoch=1, predictor_cells=300, proxy_batch=64, morph_steps=4, morph_children=4,
                        morph_epochs=1, nsas=True, hier_epochs=2, hier_budget=4, blockqnn_budget=150,
                        mask_epochs=1),
        # the supernets far above chance (measured: DARTS' mixture ~95 % after 6 epochs, GDAS' derived path ~93 %
        # after 30, RS-WS' scored cells ~78 % on average after 30; GDAS and RS-WS epochs are the cheaper ones)
        "compare": dict(seeds=100, budget_trainings=100, budget_s=140, trials=100,
                        strategies=("random", "regularized", "reinforce", "reinforce-nb201", "bo", "blockqnn"),
                        oneshot=("darts", "gdas", "rsws"), oneshot_seeds=3, oneshot_epochs=6, gdas_epochs=30,
                        rsws_epochs=30, oneshot_candidates=30, oneshot_batch_size=64, oneshot_dataset="mnist5k",
                        oneshot_image_size=14, oneshot_stem_stride=2),
        # Chapter 4: DARTS on the NB201 supernet with 5 cells a stage (NAS-Bench-201's depth) on 60 % of the
        # data, an architecture step of 3e-2 and 30 epochs: of four configurations measured with
        # benchmarks/darts_collapse.py it is the one whose parameter-free edges rose (3 cells a stage: with
        # seed 0 the alphas drifted towards them, with seed 1 away; arch lr 0.1: away); a uniform supernet is
        # well trained at 60 epochs (~25 s);
        # tricks: 3 searched + 5 random cells x 2 fresh seeds, every trick trained (~130 recipe trainings)
        "future": dict(trick_cells=5, trick_seeds=2, search_seeds=3, search_budget=100,
                       tricks=("baseline", "augment", "cutout", "label_smoothing", "longer", "all"),
                       longer=2, cutout_size=4, darts_epochs=30, darts_fraction=0.6, darts_N=5, darts_arch_lr=3e-2,
                       ws_epochs=60, ws_checkpoints=(2, 8, 20, 40, 60), ws_cells=30, ws_batch=64, forget_cells=8,
                       forget_epochs=4, forget_steps=50, latency_cells=100, latency_repeats=20, search_cycles=300,
                       dpp_keep=8),
        "figures": dict(chain_candidates=4, darts_epochs=4,
                        compare_strategies=("random", "regularized", "reinforce", "bo"), compare_seeds=30),
    },
    "gpu": {
        "data": dict(dataset="cifar10", image_size=32),
        "train": dict(epochs=20, batch_size=256, lr=0.1),
        # Sizes below fit 45 minutes a chapter on a T4 by `tutorial-nas plan --profile gpu --device t4`.
        # Chapter 1's lesson is that full training makes every candidate expensive: full CIFAR-10 at 32x32, but
        # 5 epochs and 20 networks a strategy (5 x 20 trainings, ~33 min), networks of up to 6 layers of 16-64
        # filters (the search candidates average ~12 MFLOPs an image).
        "chain": dict(max_layers=6, filters=(16, 32, 64), dataset="cifar10", image_size=32, epochs=5,
                      batch_size=128, lr=0.05, budget=20, population=8, genetic_nodes=(3, 4, 5),
                      exercise_seeds=3, exercise_epochs=1, exercise_candidates=10, exercise_bench_seeds=10,
                      exercise_bench_budget=300),
        "cell": dict(C=16, N=5, stem_stride=1, dataset="cifar10", image_size=32),
        # Chapter 2 shows the search's dynamics, not a final cell: a proxy smaller than DARTS' 8-cell search
        # network (5 cells, C=16, batch 64) for 8 epochs on half of CIFAR-10's training images, split in two
        # halves of 11,250 for the weights and the alphas (~29 min on a T4 by the plan for first order, second
        # order at 2.5x its cost, and GDAS); the two cells are then trained 10 epochs on the same images with 3
        # seeds each (~8 min). The NAS-Bench-201 supernet keeps DARTS' 50 epochs
        # (on the benchmark's 1,000 images: ~1 min).
        "darts": dict(C=16, layers=5, N=5, epochs=8, batch_size=64, dataset="cifar10", image_size=32,
                      train_epochs=10, nb201_epochs=50, data_fraction=0.5, gdas_epochs=10, gdas_nb201_epochs=50),
        # the morphism climb trains on full CIFAR-10 (the `data` section): 4 steps of 4 children, 1 epoch each,
        # then each network again from scratch (~1 min); the shortcuts work on the benchmark's images (~2 min)
        "oneshot": dict(epochs=50, batch_size=256, eval_cells=150, controller_steps=200, train_epochs=2,
                        early_epoch=2, predictor_cells=500, proxy_batch=128, morph_steps=4, morph_children=4,
                        morph_epochs=1, nsas=True, hier_epochs=1, hier_budget=8, blockqnn_budget=300,
                        mask_epochs=2),
        "compare": dict(seeds=100, budget_trainings=100, budget_s=140, trials=100,
                        strategies=("random", "regularized", "reinforce", "reinforce-nb201", "bo", "blockqnn"),
                        oneshot=("darts", "gdas", "rsws"), oneshot_seeds=5, oneshot_epochs=10, gdas_epochs=30,
                        rsws_epochs=40, oneshot_candidates=100, oneshot_batch_size=64, oneshot_dataset="mnist5k",
                        oneshot_image_size=14, oneshot_stem_stride=2),
        # Chapter 4: DARTS on the NAS-Bench-201 supernet at the size NAS-Bench-201 searched (C=16, N=5) for 20
        # epochs on half of CIFAR-10 (3,500 steps, ~20 min), enough for the skip connections to take over. The
        # rotation search uses the chain sizes above (~7 min); tricks, supernet analyses and latencies use the
        # benchmark's recipe, whatever the profile.
        # The architecture step scaled to the steps: NAS-Bench-201's DARTS takes ~19,500 at 3e-4, this one ~3,500.
        "future": dict(trick_cells=8, trick_seeds=3, search_seeds=5, search_budget=100,
                       tricks=("baseline", "augment", "cutout", "label_smoothing", "longer", "all"),
                       longer=3, cutout_size=4, darts_epochs=20, darts_fraction=0.5, darts_N=5, darts_arch_lr=2e-3,
                       ws_epochs=60, ws_checkpoints=(2, 8, 20, 40, 60), ws_cells=100, ws_batch=64, forget_cells=20,
                       forget_epochs=8, forget_steps=100, latency_cells=200, latency_repeats=50, search_cycles=500,
                       dpp_keep=16),
        "figures": dict(chain_candidates=10, darts_epochs=10,
                        compare_strategies=("random", "regularized", "reinforce", "bo"), compare_seeds=100),
    },
}


class Section:
    """Attribute access to one section of a profile, with a clear error for a missing key."""

    def __init__(self, name: str, values: dict):
        self._name, self._values = name, dict(values)

    def __getattr__(self, key):
        if key.startswith("_"):
            raise AttributeError(key)
        try:
            return self._values[key]
        except KeyError:
            raise NASInputError(
                f"profile section {self._name!r} has no size {key!r}; it has: {', '.join(self._values)}"
            ) from None

    def as_dict(self) -> dict:
        return dict(self._values)

    def __repr__(self):
        return f"{self._name}({', '.join(f'{k}={v!r}' for k, v in self._values.items())})"


@dataclass(frozen=True)
class Profile:
    """A named set of sizes plus the device it runs on."""

    name: str
    device: torch.device
    sections: dict

    def __getattr__(self, section):
        if section.startswith("_") or section in ("name", "device", "sections"):
            raise AttributeError(section)
        if section not in self.sections:
            raise NASInputError(
                f"profile {self.name!r} has no section {section!r}; it has: {', '.join(self.sections)}"
            )
        return Section(section, self.sections[section])

    def describe(self) -> str:
        lines = [f"profile: {self.name}   device: {describe_device(self.device)}   torch {torch.__version__}"]
        for key, values in self.sections.items():
            lines.append(f"  {key:8s} " + ", ".join(f"{k}={v}" for k, v in values.items()))
        return "\n".join(lines)


def choose_device(prefer: str | None = None) -> torch.device:
    """cuda when present, else Apple's mps, else cpu; ``prefer`` forces one of them."""
    if prefer is not None:
        check_choice("device", prefer, ["cuda", "mps", "cpu"])
        return torch.device(prefer)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    if device.type == "cpu":
        return f"cpu ({torch.get_num_threads()} threads)"
    return device.type


def profile_name(name: str | None = None) -> str:
    """The profile asked for (argument, then environment), or the automatic choice."""
    name = name or os.environ.get(ENV_VAR) or ("gpu" if torch.cuda.is_available() else "cpu")
    name = name.strip().lower()
    check_choice("profile", name, PROFILES)
    return name


def get_profile(name: str | None = None, device: str | None = None) -> Profile:
    """The profile ``name`` (or ``TUTORIAL_NAS_PROFILE``, or automatic) on the chosen device."""
    name = profile_name(name)
    return Profile(name=name, device=choose_device(device), sections=PROFILES[name])


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (all devices) so that a run can be repeated."""
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise NASInputError(f"seed must be an integer, got {seed!r}")
    if not 0 <= int(seed) < 2**63:  # the range the CLI and the strategies accept too
        raise NASInputError(f"seed must be an integer from 0 to 2**63 - 1, got {seed!r}")
    random.seed(int(seed))
    np.random.seed(int(seed) % 2**32)
    torch.manual_seed(int(seed))


def setup(seed: int = 0, name: str | None = None, verbose: bool = True) -> Profile:
    """The one call of every chapter's setup cell: pick the profile and device, seed, print the choice.

    On Colab the automatic choice is ``gpu`` on a GPU runtime; on one without a GPU it is ``cpu``, and a
    warning that cannot be missed says how to get a GPU (always printed, even with ``verbose=False``)."""
    profile = get_profile(name)
    seed_everything(seed)
    if "google.colab" in sys.modules and profile.device.type != "cuda":
        print("\n".join(["!" * 100, f"!!  NO GPU: this Colab runtime has none; the chapter runs the "
                         f"'{profile.name}' profile on the CPU.", "!!  For the full-size 'gpu' profile: Runtime > "
                         "Change runtime type > GPU, then run this notebook again from the top.", "!" * 100]),
              file=sys.stderr)
    if verbose:
        print(profile.describe())
        if profile.name == "gpu" and profile.device.type != "cuda":
            print("WARNING: the gpu profile without a GPU will be very slow; on Colab choose "
                  "Runtime > Change runtime type > GPU, or set TUTORIAL_NAS_PROFILE=cpu.")
    return profile
