"""Initial values for the parameters and buffers that ``torch.nn.init`` has no layer for."""

from __future__ import annotations

import torch
from torch import Tensor


def normal_values(std: float, *shape: int) -> Tensor:
    """Values of ``shape`` drawn from N(0, std²), on the default device.

    On the meta device (a model built only to check its config and count its parameters) there are no values to
    scale, and arithmetic there imports ``torch._dynamo``: ~150 MB and ~1.3 s in the process that checks.
    """
    values = torch.randn(*shape)
    return values if values.is_meta else values.mul_(std)
