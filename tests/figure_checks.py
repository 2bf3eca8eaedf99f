"""Checks shared by the figure tests: the title and caption of a house-style figure, and an
autouse fixture (import it into a test module) that closes every figure after each test."""

import matplotlib.pyplot as plt
import pytest


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def title(fig) -> str:
    """The figure's title: the axes title, else the suptitle that plots.new_figure sets (as one
    line: the figure wraps it to its width)."""
    return (fig.axes[0].get_title() or fig._suptitle.get_text()).replace("\n", " ")


def caption(fig) -> str:
    """The caption plots.finish adds (the last text of the figure: n and definition)."""
    return fig.texts[-1].get_text()
