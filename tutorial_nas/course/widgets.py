"""ipywidgets front ends: pick a strategy and a budget, rerun the search, watch the plot grow."""

from __future__ import annotations

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
from IPython.display import display

from ..errors import NASInputError
from ..search import history_frame, search
from . import viz
from .viz import plot_histories


def search_panel(make_run: dict, budgets=(4, 8, 16, 32), default_budget: int | None = None, seed: int = 0):
    """A panel that reruns a search with a live plot.

    ``make_run`` maps a strategy name to a function ``() -> (space, evaluator, options)``; the panel calls it
    when the button is pressed, so nothing is trained until the learner asks.
    """
    strategy = widgets.Dropdown(options=list(make_run), description="strategy")
    budget = widgets.SelectionSlider(options=list(budgets), value=default_budget or budgets[0],
                                     description="candidates")
    seed_box = widgets.IntText(value=seed, description="seed", layout=widgets.Layout(width="150px"))
    button = widgets.Button(description="run search", button_style="primary")
    out = widgets.Output()

    def run(_):
        space, evaluator, options = make_run[strategy.value]()
        fig, ax = plt.subplots(figsize=(7, 4))
        plt.close(fig)

        def redraw(rows):
            ax.clear()
            plot_histories({strategy.value: history_frame(list(rows), {})}, ax=ax)
            with out:
                out.clear_output(wait=True)
                display(fig)

        button.disabled = True
        try:
            search(space, strategy.value, evaluator, budget.value, seed=seed_box.value, progress=False,
                   callback=redraw, **options)
        finally:
            button.disabled = False

    button.on_click(run)
    panel = widgets.VBox([widgets.HBox([strategy, budget, seed_box, button]), out])
    return panel


def anytime_panel(bench, strategies=None, seeds: int = 5, budget_s: float | None = None):
    """A panel that reruns the comparison on the benchmark and redraws the anytime curves (look-ups only, so
    seconds, not hours): tick strategies, pick the budget (seconds charged) and the number of seeds.

    ``budget_s`` defaults to 100 times the mean training seconds of a cell of the space.
    """
    from ..analysis.compare import STRATEGIES, compare, plot_anytime
    from ..spaces import make_space

    mean_cost = bench.mean_over_space("train_seconds")
    budget_s = budget_s or round(100 * mean_cost)
    options = sorted({int(round(budget_s * f)) for f in (0.25, 0.5, 1, 2, 4)})
    picks = widgets.SelectMultiple(options=list(strategies or STRATEGIES), value=("random", "regularized"),
                                   description="strategies", rows=4)
    budget = widgets.SelectionSlider(options=options, value=int(round(budget_s)), description="budget (s)")
    n_seeds = widgets.IntSlider(value=seeds, min=2, max=50, description="seeds")
    button = widgets.Button(description="compare", button_style="primary")
    out = widgets.Output()
    space = make_space("nb201")

    def run(_):
        if not picks.value:
            with out:
                out.clear_output()
                print("tick at least one strategy")
            return
        button.disabled = True
        try:
            df = compare(space, list(picks.value), n_seeds.value, f"{budget.value}s", bench=bench, progress=False)
            fig, ax = plt.subplots(figsize=(7, 4))
            plot_anytime(df, ax=ax)
            plt.close(fig)
            with out:
                out.clear_output(wait=True)
                display(fig)
        finally:
            button.disabled = False

    button.on_click(run)
    return widgets.VBox([widgets.HBox([picks, widgets.VBox([budget, n_seeds, button])]), out])


def space_explorer(space, seed: int = 0, draw=None):
    """Sample architectures of ``space`` with a slider: the string, the size of the network and its drawing.

    ``draw`` turns an architecture into something displayable (default: :func:`viz.draw_chain` for chain
    spaces, :func:`viz.draw_genetic` for Genetic CNN, :func:`viz.draw_nb201` for cells).
    """
    if draw is None:
        draw = {"chain": viz.draw_chain, "genetic": viz.draw_genetic, "nb201": viz.draw_nb201}.get(space.name)
        if draw is None:
            raise NASInputError(f"no drawing for the space {space.name!r}; pass draw=, a function arch -> figure")
    seed_slider = widgets.IntSlider(value=seed, min=0, max=999, description="sample seed")
    out = widgets.Output()

    def show(change=None):
        arch = space.sample(np.random.default_rng(seed_slider.value))
        with out:
            out.clear_output(wait=True)
            print(space.to_str(arch))
            display(draw(arch))

    seed_slider.observe(show, names="value")
    show()
    return widgets.VBox([seed_slider, out])
