"""Reading a safetensors file's header on its own: tensor names, dtypes and shapes, before any data is read.

The format: 8 bytes little-endian ``N``, then ``N`` bytes of JSON ``{name: {"dtype", "shape", "data_offsets"}}``
(plus an optional ``"__metadata__"``), then the tensors' bytes. Checking the header against what the config
implies means a file whose header asks for a 10^18-element tensor is refused before anything is allocated.
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass
from pathlib import Path

MAX_HEADER_BYTES = 16 * 2**20  # a model of a few thousand tensors needs well under 1 MB
# dtypes a vae-hub model's weights may be stored in, with their sizes in bytes
FLOAT_DTYPES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2}


class HeaderError(ValueError):
    """The file is not a well-formed safetensors file of floating-point tensors."""


@dataclass(frozen=True)
class TensorInfo:
    dtype: str
    shape: tuple[int, ...]
    start: int
    end: int


def read_header(path: Path) -> dict[str, TensorInfo]:
    """The tensors a safetensors file declares, checked for consistency with the file's size."""
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
    tensors = {name: tensor_info(name, entry) for name, entry in header.items()}
    data_bytes = size - 8 - length
    end = max((t.end for t in tensors.values()), default=0)
    if end != data_bytes:
        raise HeaderError(f"its header describes {end:,} bytes of tensor data, but the file holds {data_bytes:,}")
    return tensors


def tensor_info(name: str, entry: object) -> TensorInfo:
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
    return TensorInfo(dtype, tuple(shape), offsets[0], offsets[1])
