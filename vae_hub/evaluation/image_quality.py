"""How sharp images are: the variance of the Laplacian (Pech-Pacheco et al. 2000), a standard focus measure.

A blurry image has weak second derivatives everywhere, so its Laplacian response varies little; edges and texture
make it vary a lot. On the same test images, a model whose reconstructions score higher keeps more of their detail.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import functional as F

# the 4-neighbour discrete Laplacian, as in OpenCV's cv2.Laplacian with ksize=1
LAPLACIAN = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])


def laplacian_variance(images: Tensor) -> Tensor:
    """The variance of each image's Laplacian over its interior pixels, channels averaged.

    Args:
        images: (N, C, H, W) with H, W >= 3, pixel values in [0, 1] (uint8 is scaled to them).

    Returns:
        (N,) one figure per image: higher is sharper (0 for a flat image).
    """
    if images.dim() != 4 or min(images.shape[-2:]) < 3:
        raise ValueError(f"images must be (N, C, H, W) with H and W >= 3, got shape {tuple(images.shape)}")
    x = images.float() / 255 if images.dtype == torch.uint8 else images.float()
    n, c, h, w = x.shape
    kernel = LAPLACIAN.to(x.device)[None, None]
    response = F.conv2d(x.reshape(n * c, 1, h, w), kernel)  # no padding: interior pixels only
    return response.flatten(1).var(dim=1).reshape(n, c).mean(dim=1)
