"""Latent maps drawn for the page: codes as a scatter coloured by class, the prior's 1-, 2-, 3-sigma circles,
and marked points; plus the inverse, from a clicked pixel back to plane coordinates."""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image
from torch import Tensor

WIDTH_PX, HEIGHT_PX = 600, 520  # the axes sit at a fixed place in the picture, so a click maps back exactly
BOX_PX = 400  # the square axes box: 64 px from the left, 50 px from the bottom; the legend on its right
AXES = (64 / WIDTH_PX, 50 / HEIGHT_PX, BOX_PX / WIDTH_PX, BOX_PX / HEIGHT_PX)  # as fractions of the picture


@dataclass(frozen=True)
class View:
    """The plane's visible square: centre and half-width in plane coordinates."""

    cx: float
    cy: float
    half: float

    @property
    def xlim(self) -> tuple[float, float]:
        return self.cx - self.half, self.cx + self.half

    @property
    def ylim(self) -> tuple[float, float]:
        return self.cy - self.half, self.cy + self.half

    def from_pixel(self, px: float, py: float) -> tuple[float, float]:
        """Plane coordinates of pixel (px, py) of the picture (origin top left)."""
        left, bottom, width, height = AXES
        fx = (px / WIDTH_PX - left) / width
        fy = (1 - py / HEIGHT_PX - bottom) / height
        return self.xlim[0] + fx * 2 * self.half, self.ylim[0] + fy * 2 * self.half


def view_for(points: Tensor, origin: Tensor, min_half: float = 3.5) -> View:
    """A square around the prior's mean holding its 3-sigma circle and all but the farthest 0.5% of points."""
    spread = (points - origin).abs().max(1).values
    half = max(min_half, float(np.quantile(spread.numpy(), 0.995)) * 1.05)
    return View(float(origin[0]), float(origin[1]), half)


def draw_map(
    points: Tensor,
    labels: Tensor,
    class_names: list[str],
    view: View,
    origin: Tensor,
    *,
    title: str,
    axis_names: tuple[str, str],
    marks: list[tuple[float, float, str]] = (),
) -> np.ndarray:
    """The scatter of ``points`` (N, 2) coloured by class, prior circles around ``origin``, and ``marks``
    (x, y, text) drawn as stars; an RGB array of HEIGHT_PX x WIDTH_PX."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dpi = 100
    fig = plt.figure(figsize=(WIDTH_PX / dpi, HEIGHT_PX / dpi), dpi=dpi)
    ax = fig.add_axes(AXES)
    cmap = plt.get_cmap("tab10")
    xy = points.numpy()
    for c, name in enumerate(class_names):
        chosen = (labels == c).numpy()
        ax.scatter(xy[chosen, 0], xy[chosen, 1], s=5, color=cmap(c % 10), alpha=0.7, label=name, linewidths=0)
    theta = np.linspace(0, 2 * np.pi, 200)
    for r in (1, 2, 3):
        ax.plot(origin[0].item() + r * np.cos(theta), origin[1].item() + r * np.sin(theta), "k--", lw=0.8,
                alpha=0.6)  # fmt: skip
        ax.annotate(f"{r}σ", (origin[0].item() + r * 0.71, origin[1].item() + r * 0.71), fontsize=8, alpha=0.7)
    for x, y, text in marks:
        ax.plot([x], [y], marker="*", ms=18, color="black", mec="white", mew=1.2)
        ax.annotate(text, (x, y), xytext=(8, 8), textcoords="offset points", fontsize=9, weight="bold")
    ax.set(xlim=view.xlim, ylim=view.ylim, xlabel=axis_names[0], ylabel=axis_names[1])
    ax.set_title(title, fontsize=10, loc="left", wrap=True)
    ax.set_aspect("equal")  # AXES is square and so is the view: the box stays where AXES says
    ax.grid(alpha=0.2)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, markerscale=3, frameon=False)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    plt.close(fig)
    buffer.seek(0)
    return np.asarray(Image.open(buffer).convert("RGB"))
