"""Reading a safetensors file: its header on its own (names, dtypes, shapes) before any data, then the tensors.

The format: 8 bytes little-endian ``N``, then ``N`` bytes of JSON ``{name: {"dtype", "shape", "data_offsets"}}``
(plus an optional ``"__metadata__"``), then the tensors' bytes. Checking the header against what the config
implies means a file whose header asks for a 10^18-element tensor is refused before anything is allocated.

The tensors are then read with plain file reads into memory of their own: one copy. (``safetensors.torch.load_file``
returns tensors backed by a memory map of the file; a model made of them crashes with SIGBUS when the file is later
truncated or rewritten in place.)
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import HeaderError

MAX_HEADER_BYTES = 16 * 2**20  # a model of a few thousand tensors needs well under 1 MB
# dtypes a vae-hub model's weights may be stored in, with their sizes in bytes
FLOAT_DTYPES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2}
TORCH_DTYPES = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}


@dataclass(frozen=True)
class TensorInfo:
    """A tensor as the header declares it; ``start`` and ``end`` are byte positions in the file."""

    dtype: str
    shape: tuple[int, ...]
    start: int
    end: int


def read_header(path: Path) -> dict[str, TensorInfo]:
    """The tensors a safetensors file declares, read from its header alone and checked against the file's size.

    Args:
        path: A ``.safetensors`` file.

    Returns:
        Tensor name to ``TensorInfo`` (dtype, shape, where its bytes are).

    Raises:
        HeaderError: For a header that is too long, malformed, or that does not match the file.
    """
    size = path.stat().st_size
    with path.open("rb") as f:
        prefix = f.read(8)
        if len(prefix) < 8:
            raise HeaderError(f"the file is {size} bytes long, shorter than a safetensors header")
        (length,) = struct.unpack("<Q", prefix)
        if length > min(MAX_HEADER_BYTES, size - 8):
            raise HeaderError(
                f"its header claims {length:,} bytes, but the file is {size:,} bytes and a header may be at most "
                f"{MAX_HEADER_BYTES:,}"
            )
        raw = f.read(length)
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise HeaderError(f"its header is not valid JSON ({type(e).__name__})") from None
    if not isinstance(header, dict):
        raise HeaderError("its header is not a JSON object")
    header.pop("__metadata__", None)
    tensors = {name: tensor_info(name, entry, 8 + length) for name, entry in header.items()}
    end = max((t.end for t in tensors.values()), default=8 + length)
    if end != size:
        raise HeaderError(
            f"its header describes {end - 8 - length:,} bytes of tensor data, but the file holds {size - 8 - length:,}"
        )
    return tensors


def read_tensors(path: Path, tensors: dict[str, TensorInfo]) -> dict[str, torch.Tensor]:
    """The tensors ``read_header`` found in ``path``, each read into its own memory (CPU, little-endian)."""
    out = {}
    with path.open("rb") as f:
        for name, info in tensors.items():
            data = bytearray(info.end - info.start)
            f.seek(info.start)
            if f.readinto(data) != len(data):
                raise HeaderError(f"the file ends inside tensor {name!r}")
            dtype = TORCH_DTYPES[info.dtype]
            flat = torch.frombuffer(data, dtype=dtype) if data else torch.empty(0, dtype=dtype)
            out[name] = flat.reshape(info.shape)
    return out


def tensor_info(name: str, entry: object, data_start: int) -> TensorInfo:
    """One header entry, checked; its offsets made absolute (``data_start`` is where the tensor data begins)."""
    if not isinstance(entry, dict):
        raise HeaderError(f"its header entry for {name!r} is not an object")
    dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
    if dtype not in FLOAT_DTYPES:
        raise HeaderError(f"tensor {name!r} has dtype {dtype!r}; expected one of {', '.join(FLOAT_DTYPES)}")
    if not (isinstance(shape, list) and all(type(s) is int and s >= 0 for s in shape)):
        raise HeaderError(f"tensor {name!r} has shape {shape!r}; expected a list of non-negative integers")
    if not (
        isinstance(offsets, list) and len(offsets) == 2 and all(type(o) is int for o in offsets)
        and 0 <= offsets[0] <= offsets[1]
    ):  # fmt: skip
        raise HeaderError(f"tensor {name!r} has data_offsets {offsets!r}; expected [begin, end]")
    if offsets[1] - offsets[0] != math.prod(shape) * FLOAT_DTYPES[dtype]:
        raise HeaderError(f"tensor {name!r} of shape {shape} and dtype {dtype} does not fit its data_offsets")
    return TensorInfo(dtype, tuple(shape), data_start + offsets[0], data_start + offsets[1])
