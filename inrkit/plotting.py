"""Pictures drawn off-screen on matplotlib's `Figure` directly.

Going through pyplot would mean switching the global backend to Agg, which breaks plotting in the
notebook of a user who calls inrkit; a bare Figure needs no backend and nothing to close.
"""

from __future__ import annotations

from typing import Any


def subplots(*args: Any, figsize: tuple[float, float], **kwargs: Any) -> tuple[Any, Any]:
    """Like `plt.subplots`, without pyplot's global state (matplotlib is imported only when drawing)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    return fig, fig.subplots(*args, **kwargs)
