"""ipywidgets front ends: pick a strategy and a budget, rerun the search, watch the plot grow."""

from __future__ import annotations

import ipywidgets as widgets
import matplotlib.pyplot as plt
from IPython.display import display

from .search import history_frame, search
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
