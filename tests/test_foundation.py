"""Profiles, data, the trainer and the search loop: what everything else stands on."""

import math

import numpy as np
import pytest
import torch
import torch.nn as nn

from tutorial_nas import NASInputError
from tutorial_nas.data import Augment, augment_batch, batches, load_dataset
from tutorial_nas.evaluators import Evaluator, Result
from tutorial_nas.profiles import PROFILES, get_profile, seed_everything, setup
from tutorial_nas.search import Budget, best, load_checkpoint, search
from tutorial_nas.spaces.cell import NB201Space
from tutorial_nas.train import TrainConfig, count_flops, train


def small_cnn(c_in=1, classes=10):
    return nn.Sequential(nn.Conv2d(c_in, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
                         nn.Flatten(), nn.Linear(16 * 64, classes))


# --- profiles -------------------------------------------------------------------------------------------
def test_profile_from_environment(monkeypatch):
    monkeypatch.setenv("TUTORIAL_NAS_PROFILE", "cpu")
    assert get_profile().name == "cpu"
    assert get_profile("ci").chain.max_layers == PROFILES["ci"]["chain"]["max_layers"]


def test_every_profile_has_the_same_sections_and_keys():
    names = list(PROFILES)
    for section, values in PROFILES["ci"].items():
        for other in names[1:]:
            assert set(PROFILES[other][section]) == set(values), (other, section)


def test_unknown_profile_and_size_are_clear_errors(monkeypatch):
    with pytest.raises(NASInputError, match="choose one of: 'ci', 'cpu', 'gpu'"):
        get_profile("laptop")
    monkeypatch.setenv("TUTORIAL_NAS_PROFILE", "huge")
    with pytest.raises(NASInputError, match="unknown profile 'huge'"):
        get_profile()
    with pytest.raises(NASInputError, match="has no size 'nope'"):
        _ = get_profile("ci").chain.nope


def test_setup_prints_the_choice_and_seeds(capsys):
    setup(seed=3, name="ci")
    assert "profile: ci" in capsys.readouterr().out
    a = torch.rand(3)
    seed_everything(3)
    assert torch.equal(a, torch.rand(3))
    with pytest.raises(NASInputError):
        seed_everything("three")
    for bad in (-1, 2**63):
        with pytest.raises(NASInputError, match="0 to 2\\*\\*63 - 1"):
            seed_everything(bad)
    seed_everything(2**63 - 1)


# --- data -----------------------------------------------------------------------------------------------
def test_offline_datasets_have_fixed_disjoint_splits():
    d1, d2 = load_dataset("digits"), load_dataset("digits")
    assert torch.equal(d1.valid_y, d2.valid_y)
    assert (len(d1.train_y), len(d1.valid_y), len(d1.test_y)) == (1077, 360, 360)
    assert d1.input_shape == (1, 8, 8) and d1.num_classes == 10
    assert abs(float(d1.train_x.mean())) < 1e-4  # normalised with the training split's statistics
    m = load_dataset("mnist5k", image_size=14)
    assert m.input_shape == (1, 14, 14) and len(m.train_y) == 3000
    flat = lambda x: {tuple(r) for r in x.flatten(1)[:, ::7].numpy().round(3).tolist()}  # noqa: E731
    assert not flat(m.test_x) & flat(m.train_x)


def test_unknown_dataset_and_bad_size_are_clear_errors():
    with pytest.raises(NASInputError, match="unknown data set 'imagenet'.*'digits'"):
        load_dataset("imagenet")
    with pytest.raises(NASInputError, match="image_size"):
        load_dataset("digits", image_size=0)


def test_failed_download_names_the_offline_datasets(monkeypatch, tmp_path):
    import torchvision

    def refuse(*args, **kwargs):
        raise RuntimeError("Network is unreachable")

    monkeypatch.setenv("TUTORIAL_NAS_DATA", str(tmp_path))
    monkeypatch.setattr(torchvision.datasets, "CIFAR10", refuse)
    from tutorial_nas import data

    data._RAW_CACHE.pop("cifar10", None)
    with pytest.raises(NASInputError, match="could not download 'cifar10'.*digits, mnist5k"):
        load_dataset("cifar10")


def test_augmentation_translates_each_image_by_its_own_offset():
    x = torch.zeros(64, 1, 8, 8)
    x[:, :, 4, 4] = 1.0  # one bright pixel
    g = torch.Generator().manual_seed(0)
    out = augment_batch(x, Augment(translate=2), g)
    assert out.shape == x.shape
    pos = out.flatten(1).argmax(1)
    rows, cols = pos // 8, pos % 8
    assert set(rows.tolist()) <= set(range(2, 7)) and set(cols.tolist()) <= set(range(2, 7))
    assert len(set(zip(rows.tolist(), cols.tolist()))) > 5  # offsets differ between images
    assert torch.equal(out.sum((1, 2, 3)), x.sum((1, 2, 3)))  # nothing lost inside the padding range


def test_an_augmented_batch_keeps_the_plain_memory_layout():
    # a one-channel batch gathered through a permute has channel stride 1, which the CPU backward of a strided
    # 1x1 convolution mishandles (heap corruption); the batch must come out laid out as (n, c, h, w)
    for c in (1, 3):
        out = augment_batch(torch.randn(16, c, 8, 8), Augment(translate=1, flip=True), torch.Generator())
        assert out.stride() == torch.empty(out.shape).stride()


def test_batches_cover_the_split_once():
    d = load_dataset("digits")
    seen = torch.cat([yb for _, yb in batches(d.train_x, d.train_y, 100, shuffle=True,
                                              generator=torch.Generator().manual_seed(1))])
    assert torch.equal(seen.sort().values, d.train_y.sort().values)
    with pytest.raises(NASInputError):
        next(batches(d.train_x, d.train_y, 0))


# --- training -------------------------------------------------------------------------------------------
def test_a_trained_result_depends_on_the_candidate_and_the_seed_only():
    from tutorial_nas.evaluators import FullTraining
    from tutorial_nas.spaces.chain import ChainSpace

    space, d = ChainSpace(max_layers=2, filters=(4, 8)), load_dataset("digits")
    arch = space.sample(np.random.default_rng(0))
    results = []
    for global_seed in (1, 2):  # whatever ran before (a fresh process, a resumed search) drew from the RNG
        torch.manual_seed(global_seed)
        r = FullTraining(space, d, TrainConfig(epochs=1, batch_size=64, seed=3)).evaluate(arch)
        results.append((r.curve, r.test_acc))
    assert results[0] == results[1]


def test_training_learns_and_is_repeatable():
    d = load_dataset("digits")
    seed_everything(0)
    rec1 = train(small_cnn(), d, TrainConfig(epochs=3, seed=5), progress=False)
    seed_everything(0)
    rec2 = train(small_cnn(), d, TrainConfig(epochs=3, seed=5), progress=False)
    assert rec1.train_loss == rec2.train_loss and rec1.valid_acc == rec2.valid_acc  # same seed, same record
    assert rec1.train_loss[-1] < rec1.train_loss[0]
    assert rec1.final_valid_acc > 30  # ten classes: chance is 10 %
    assert rec1.params == sum(p.numel() for p in small_cnn().parameters())
    assert rec1.flops > 0 and rec1.seconds > 0 and len(rec1.valid_acc) == 3


def test_flops_of_a_convolution_are_counted_exactly():
    conv = nn.Conv2d(1, 4, 3, padding=1, bias=False)
    assert count_flops(conv, (1, 8, 8)) == 2 * 4 * 9 * 64


@pytest.mark.parametrize("bad", [dict(epochs=0), dict(epochs=-1), dict(data_fraction=0), dict(batch_size=0),
                                 dict(batch_size=True), dict(epochs=True), dict(lr=True), dict(batch_size=64.0),
                                 dict(momentum=1.0), dict(weight_decay=-1e-4), dict(label_smoothing=1.0),
                                 dict(grad_clip=0), dict(eval_batch_size=0), dict(seed=0.5), dict(lr="0.1")])
def test_budget_of_zero_or_less_is_a_clear_error(bad):
    with pytest.raises(NASInputError):
        train(small_cnn(), load_dataset("digits"), progress=False, **bad)


def test_a_candidate_s_cost_leaves_out_its_test_evaluation(monkeypatch):
    """A search selects on validation accuracy and never reads the test split: the seconds spent evaluating it
    are not charged (made to take 1 s here, against a training of a fraction of a second)."""
    import time

    import tutorial_nas.train as training
    from tutorial_nas.evaluators import FullTraining
    from tutorial_nas.spaces.chain import ChainSpace

    data = load_dataset("digits")
    real = training.evaluate

    def slow_on_test(model, x, y, *args, **kwargs):
        if x is data.test_x:
            time.sleep(1.0)
        return real(model, x, y, *args, **kwargs)

    monkeypatch.setattr(training, "evaluate", slow_on_test)
    space = ChainSpace(max_layers=1, filters=(8,), kernels=(3,), pools=("none",))
    result = FullTraining(space, data, TrainConfig(epochs=0.2, batch_size=64)).evaluate(space.sample(
        np.random.default_rng(0)))
    assert 0 < result.cost_s < 0.9 and math.isfinite(result.test_acc)


def test_early_stop_and_fractional_epochs():
    d = load_dataset("digits")
    rec = train(small_cnn(), d, epochs=5, progress=False, on_epoch=lambda e, r: e >= 2)
    assert len(rec.valid_acc) == 2
    rec = train(small_cnn(), d, epochs=0.5, progress=False)
    assert math.isclose(rec.epochs, 0.5, abs_tol=0.1)
    with pytest.raises(NASInputError, match="unknown training option"):
        train(small_cnn(), d, epochz=3)


# --- the search loop ------------------------------------------------------------------------------------
class CountingEvaluator(Evaluator):
    """A cheap deterministic evaluator: accuracy = number of conv ops, cost = 10 s per evaluation."""

    name = "counting"

    def evaluate(self, arch):
        score = sum(op.startswith("nor_conv") for op in arch)
        return Result(valid_acc=float(score), test_acc=float(score) + 0.5, cost_s=10.0)


@pytest.mark.parametrize("text,expected", [("20", Budget(evaluations=20)), (20, Budget(evaluations=20)),
                                           ("600s", Budget(seconds=600)), ("10m", Budget(seconds=600)),
                                           ("2h", Budget(seconds=7200)),
                                           ("140.5 s (planned for 100 evaluations)",
                                            Budget(seconds=140.5, planned=100))])
def test_budget_parsing(text, expected):
    assert Budget.parse(text) == expected
    assert Budget.parse(str(expected)) == expected  # the History's meta text reads back as the same budget


@pytest.mark.parametrize("bad", ["0", "-3", "ten", "5x", "2.5", "", "20 (planned for 100 evaluations)",
                                 "60s (planned for 0 evaluations)"])
def test_bad_budgets_are_clear_errors(bad):
    with pytest.raises(NASInputError):
        Budget.parse(bad)


def test_search_respects_both_kinds_of_budget():
    space = NB201Space()
    h = search(space, "random", CountingEvaluator(), 7, progress=False)
    assert len(h) == 7
    h = search(space, "random", CountingEvaluator(), "95s", progress=False)
    assert len(h) == 9 and h["spent_s"].max() <= 95
    assert (h["best_valid_acc"].diff().dropna() >= 0).all()
    b = best(h)
    assert b["valid_acc"] == h["valid_acc"].max() and b["test_acc"] == b["valid_acc"] + 0.5


def test_checkpoint_resume_gives_the_uninterrupted_history(tmp_path):
    space, ev = NB201Space(), CountingEvaluator()
    full = search(space, "random", ev, 12, seed=4, progress=False)
    ck = tmp_path / "ck.json"
    search(space, "random", ev, 5, seed=4, checkpoint=ck, progress=False)
    assert len(load_checkpoint(ck)["rows"]) == 5
    # the same search with a larger budget continues from the five recorded evaluations
    resumed = search(space, "random", ev, 12, seed=4, checkpoint=ck, resume=True, progress=False)
    cols = ["arch", "valid_acc", "test_acc", "cost_s", "spent_s"]
    assert resumed[cols].equals(full[cols])


def test_truncated_or_foreign_checkpoint_is_refused(tmp_path):
    ck = tmp_path / "ck.json"
    ck.write_text('{"version": 1, "meta": {}, "rows": [')
    with pytest.raises(NASInputError, match="truncated"):
        load_checkpoint(ck)
    ck.write_text('{"version": 99, "meta": {}, "rows": []}')
    with pytest.raises(NASInputError, match="another version"):
        load_checkpoint(ck)


def test_same_seed_same_history():
    space = NB201Space()
    a = search(space, "random", CountingEvaluator(), 10, seed=1, progress=False)
    b = search(space, "random", CountingEvaluator(), 10, seed=1, progress=False)
    assert a["arch"].tolist() == b["arch"].tolist()
    c = search(space, "random", CountingEvaluator(), 10, seed=2, progress=False)
    assert a["arch"].tolist() != c["arch"].tolist()
    assert np.isfinite(a["best_test_acc"]).all()


def test_a_search_pays_for_training_not_for_counting_flops(monkeypatch):
    import time

    import tutorial_nas.train as T
    from tutorial_nas.data import load_dataset
    from tutorial_nas.evaluators import FullTraining
    from tutorial_nas.spaces import make_space
    from tutorial_nas.train import TrainConfig

    real = T.count_flops

    def slow_count(model, shape):  # the first count in a fresh process imports torch's counter: seconds
        time.sleep(2.0)
        return real(model, shape)

    monkeypatch.setattr(T, "count_flops", slow_count)
    space = make_space("chain", max_layers=2, filters=(4,))
    evaluator = FullTraining(space, load_dataset("digits"), TrainConfig(epochs=0.2, batch_size=256))
    start = time.perf_counter()
    result = evaluator.evaluate(space.sample(__import__("numpy").random.default_rng(0)))
    assert result.cost_s < time.perf_counter() - start - 1.9 and result.flops > 0
