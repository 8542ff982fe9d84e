"""A model's latent map as data: the bundled test images' posterior means on a plane, ready to draw.

Free of Gradio, so that the live training's worker process can draw its maps without loading the page's libraries.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ...data.bundled import bundled_images
from ...evaluation.latent_space import Projection, posterior_means, projection
from ...models.base import BaseVAE
from .latent_plot import View, draw_map, view_for


@dataclass(frozen=True)
class MapData:
    """A model's latent map: the bundled test images' posterior means on a plane, and the plane's view."""

    dataset: str
    codes: Tensor  # (N, latent_dim)
    points: Tensor  # (N, 2)
    labels: Tensor
    class_names: list[str]
    plane: Projection
    view: View

    @property
    def axis_names(self) -> tuple[str, str]:
        return ("z0", "z1") if self.plane.kind.startswith("the 2-D") else ("first principal direction", "second")

    def draw(self, title: str, marks: list[tuple[float, float, str]] = ()) -> np.ndarray:
        """The map as a picture: the codes coloured by class, the prior's circles, ``marks`` as stars."""
        return draw_map(self.points, self.labels, self.class_names, self.view, self.plane.origin, title=title,
                        axis_names=self.axis_names, marks=marks)  # fmt: skip


def encode_sample(model: BaseVAE, dataset: str) -> MapData:
    """The bundled test images of ``dataset`` at ``model``'s posterior means, on their plane."""
    sample = bundled_images(dataset, "test")
    with torch.inference_mode():
        codes = posterior_means(model, sample.unit(), sample.labels)
    plane = projection(codes)
    points = plane.to_plane(codes)
    return MapData(dataset, codes, points, sample.labels, sample.class_names, plane, view_for(points, plane.origin))
