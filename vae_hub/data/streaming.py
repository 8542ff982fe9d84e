"""Hugging Face datasets read as a stream (``--streaming``): for data too large for the disk, never decoded whole.

The training split is read with ``datasets``' iterable datasets: each process of a multi-process run reads its own
part (``split_dataset_by_node``: whole files when their number divides among the processes, else every N-th
example), shuffled within a buffer of ``--shuffle-buffer`` examples and reshuffled each epoch (``set_epoch``).
Pictures are decoded in a background thread while the model trains on the batch before.

The test images are the dataset's test split, or else the training pictures whose bytes hash into the held-out
share (a content hash: the same pictures for any number of processes and any shuffle); the first
``STREAM_TEST_IMAGES`` of them are decoded into memory.

Resuming is exact: a checkpoint is written at the end of each epoch, and an epoch's batches depend only on the
seed, the epoch and the number of processes. It is not exact when the data changes between the runs (other files,
another Hub revision), with another number of processes, or with a ``datasets`` version that shuffles otherwise.
"""

from __future__ import annotations

import queue
import threading
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..errors import DataError, DataNotAvailableError
from .hf_datasets import IMAGE_NAMES, LABEL_NAMES, _datasets, _source, names_of, not_images, pick_column
from .image_data import ImageData, Splits
from .image_folder import SHOWN, Source, decode, describe, read_header
from .spec import DataSpec

STREAM_TEST_IMAGES = 10_000  # test images decoded into memory, at most
HASH_BUCKETS = 10_000  # resolution of the held-out share: 0.01%
QUEUE_BATCHES = 4  # batches decoded ahead of training
SHARDS_OF_A_TABLE = 64  # a save_to_disk table streamed in this many contiguous parts

Opener = Callable[[], Any]  # a fresh IterableDataset of one split
Batches = Iterator[tuple[Tensor, Tensor]]  # (uint8 images, class indices)


def held_out(source: Source, fraction: float) -> bool:
    """Whether a picture is a test image: its bytes (or path) hash into the first ``fraction`` of the buckets."""
    data = source if isinstance(source, bytes) else str(source).encode()
    return zlib.crc32(data) % HASH_BUCKETS < round(fraction * HASH_BUCKETS)


def class_index(value: Any, class_names: list[str] | None) -> int:
    """A label's class index (-1 without classes); a DataError for a label that is not one of them."""
    if class_names is None or value is None:
        return -1
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(class_names):
        return value
    try:
        return class_names.index(str(value))
    except ValueError:
        raise DataError(
            f"the stream has the label {value!r}, which is not one of its classes {class_names[:10]} (the classes "
            "of a stream without a ClassLabel column are the labels of its test images)"
        ) from None


class ImageStream:
    """The training split of a streamed dataset: ``batches`` gives one process's share of an epoch.

    Stands where a decoded split's ``ImageData`` would: ``len()`` is the number of images an epoch trains on.
    """

    def __init__(
        self,
        open_split: Opener,
        column: str,
        label_column: str | None,
        class_names: list[str] | None,
        image_shape: tuple[int, int, int],
        n: int,
        *,
        test_fraction: float | None,
        seed: int,
        buffer_size: int,
        exact_size: bool,
        strict: bool,
    ) -> None:
        self.open_split, self.column, self.label_column = open_split, column, label_column
        self.class_names, self.image_shape, self.n = class_names, image_shape, n
        self.test_fraction, self.seed, self.buffer_size = test_fraction, seed, buffer_size
        self.exact_size, self.strict = exact_size, strict
        self.labels = torch.empty(0, dtype=torch.long)  # the labels come with each batch
        self.skipped = 0

    def __len__(self) -> int:
        return self.n

    def examples(self, epoch: int, rank: int, world: int) -> Any:
        """This process's part of the training split, shuffled for ``epoch``."""
        from datasets.distributed import split_dataset_by_node

        ds = self.open_split()
        if self.test_fraction is not None:
            fraction = self.test_fraction
            ds = ds.filter(lambda ex: (s := _source(ex[self.column])) is None or not held_out(s, fraction))
        ds = split_dataset_by_node(ds, rank=rank, world_size=world)
        ds = ds.shuffle(seed=self.seed, buffer_size=self.buffer_size)
        ds.set_epoch(epoch)
        return ds

    def batches(
        self, epoch: int, rank: int, world: int, batch_size: int, count: int
    ) -> Iterator[tuple[Tensor, Tensor]]:
        """``count`` training images of this process's share of ``epoch``, as (uint8 images, labels) batches.

        A share that runs out before ``count`` (the number of images was an estimate) starts again from its
        beginning, so every process takes the same number of steps.
        """
        out: queue.Queue[Any] = queue.Queue(maxsize=QUEUE_BATCHES)
        stop = threading.Event()

        def produce() -> None:
            try:
                for batch in self._decoded(epoch, rank, world, batch_size, count):
                    while not stop.is_set():
                        try:
                            out.put(batch, timeout=0.1)
                            break
                        except queue.Full:
                            continue
                    if stop.is_set():
                        return
                out.put(None)
            except BaseException as e:  # raised again in the training thread
                out.put(e)

        thread = threading.Thread(target=produce, name="vae-hub-stream", daemon=True)
        thread.start()
        received = 0
        try:
            # counted, not waited for to end: datasets' parquet reader sleeps 5 s when its iterator closes
            while received < count:
                item = out.get()
                if isinstance(item, BaseException):
                    raise item
                if item is None:
                    return
                received += len(item[0])
                yield item
        finally:
            stop.set()

    def _decoded(
        self, epoch: int, rank: int, world: int, batch_size: int, count: int
    ) -> Iterator[tuple[Tensor, Tensor]]:
        c, s, _ = self.image_shape
        images, labels, filled, done = np.empty((batch_size, c, s, s), dtype=np.uint8), [], 0, 0
        while done < count:
            before = done
            for example in self.examples(epoch, rank, world):
                image = self._decode(example)
                if image is None:
                    continue
                images[filled] = image
                labels.append(class_index(example.get(self.label_column), self.class_names) if self.label_column
                              else -1)  # fmt: skip
                filled, done = filled + 1, done + 1
                if filled == batch_size or done == count:
                    yield torch.from_numpy(images[:filled].copy()), torch.tensor(labels, dtype=torch.long)
                    filled, labels = 0, []
                if done == count:
                    return
            if done == before:
                raise DataError(
                    f"process {rank} of {world} found no readable training pictures in its part of the stream"
                )

    def _decode(self, example: dict[str, Any]) -> np.ndarray | None:
        c, s, _ = self.image_shape
        source = _source(example[self.column])
        try:
            if source is None:
                raise ValueError(not_images(self.column, example[self.column], "a picture of the stream"))
            if self.exact_size:
                (w, h), _ = read_header(source)
                if (w, h) != (s, s):
                    raise DataError(
                        f"a picture of the stream is {w}x{h}, but the first was {s}x{s}: pass --image-size S to scale "
                        "and centre-crop them all to SxS"
                    )
            return decode(source, c, s)
        except DataError:
            raise
        except Exception as e:  # Pillow raises many kinds for a broken picture: skipped and counted
            if self.strict:
                raise DataError(f"--strict-data: a picture of the stream is not readable ({describe(e)})") from None
            self.skipped += 1
            if self.skipped <= SHOWN:
                print(f"warning: skipped a picture of the stream that is not readable ({describe(e)})")
            return None


def open_streaming(source: str, kind: str, *, download: bool) -> tuple[dict[str, Opener], dict[str, int | None]]:
    """Each split of ``source`` as a way to open it as a stream, and its number of examples where known."""
    datasets = _datasets()
    if kind == "disk":
        data = datasets.load_from_disk(source)
        tables = dict(data) if isinstance(data, datasets.DatasetDict) else {"train": data}
        openers = {name: _table_stream(t) for name, t in tables.items()}
        return openers, {name: len(t) for name, t in tables.items()}
    if kind == "hub" and not download:
        raise DataNotAvailableError(f"{source!r} would be streamed from the Hugging Face Hub, but --no-download")
    path = Path(source).expanduser()
    try:
        if kind == "parquet" and path.is_file():
            builder = datasets.load_dataset_builder("parquet", data_files={"train": str(path)})
        else:
            builder = datasets.load_dataset_builder(str(path) if kind == "parquet" else source)
    except Exception as e:  # offline, unknown id, gated: datasets raises many kinds
        raise DataNotAvailableError(
            f"the dataset {source!r} could not be opened for streaming ({type(e).__name__}: {str(e)[:200]})"
        ) from e
    names = list(builder.config.data_files or {}) or list(builder.info.splits or {})
    counts: dict[str, int | None] = {}
    for name in names:
        info = (builder.info.splits or {}).get(name)
        counts[name] = info.num_examples if info is not None and info.num_examples else None
        if counts[name] is None and kind == "parquet":
            counts[name] = _parquet_rows(builder.config.data_files[name])
    return {str(name): _builder_stream(builder, str(name)) for name in names}, {str(k): v for k, v in counts.items()}


def _table_stream(table: Any) -> Opener:
    return lambda: table.to_iterable_dataset(num_shards=min(SHARDS_OF_A_TABLE, max(1, len(table))))


def _builder_stream(builder: Any, split: str) -> Opener:
    return lambda: builder.as_streaming_dataset(split=split)


def _parquet_rows(files: list[str]) -> int:
    import pyarrow.parquet as pq  # a dependency of datasets

    return sum(pq.read_metadata(f).num_rows for f in files)


def load_streaming(spec: DataSpec, kind: str) -> Splits:
    """The splits of ``--streaming``: the training images as an ``ImageStream``, the test images decoded.

    Raises:
        DataError: For a source that cannot be streamed, a missing split or column, or an unknown size.
    """
    if kind in ("named", "folder"):
        raise DataError(
            f"--streaming is for Hugging Face datasets (a Hub id, parquet files); {spec.dataset} is "
            + ("a named data set" if kind == "named" else "a folder of images")
            + ", decoded once into a file on disk that training maps: leave out --streaming"
        )
    datasets = _datasets()
    openers, counts = open_streaming(spec.dataset, kind, download=spec.download)
    names = list(openers)
    if spec.split not in openers:
        raise DataError(f"--split {spec.split!r} is not a split of {spec.dataset}; its splits are {names}")
    if spec.test_split is not None and spec.test_split not in openers:
        raise DataError(f"--test-split {spec.test_split!r} is not a split of {spec.dataset}; its splits are {names}")
    test_split = spec.test_split or ("test" if "test" in openers and spec.split != "test" else None)
    first_ds = openers[spec.split]()
    features = first_ds.features or first_ds._resolve_features().features
    column = pick_column(features, spec.image_column, "image", IMAGE_NAMES, "--image-column")
    label_column = pick_column(features, spec.label_column, "label", LABEL_NAMES, "--label-column") or None
    class_names = None
    if label_column and isinstance(features[label_column], datasets.ClassLabel):
        class_names = list(features[label_column].names)

    def open_split(split: str) -> Opener:
        def opened() -> Any:
            ds = openers[split]()
            if isinstance(ds.features[column], datasets.Image):
                ds = ds.cast_column(column, datasets.Image(decode=False))
            return ds.select_columns([column] + ([label_column] if label_column else []))

        return opened

    # one pass over the test pictures (or the training split's held-out share) decodes them, and the first
    # picture gives the shape unless it is given; the stream is read once, as each time it closes costs seconds
    fraction = None if test_split else spec.test_fraction
    test_images, test_labels, shape, seen, held, fraction_exact = [], [], None, 0, 0, False
    for example in open_split(test_split or spec.split)():
        seen += 1
        picture = _source(example[column])
        if shape is None:
            if picture is None:
                raise DataError(not_images(column, example[column], f"the first picture of {spec.dataset}"))
            (w, h), grey = read_header(picture)
            if spec.image_size is None and w != h:
                raise DataError(f"the first picture is {w}x{h}, not square: pass --image-size S to scale and crop")
            shape = (spec.channels or (1 if grey else 3), spec.image_size or w, spec.image_size or w)
        if picture is None or (fraction is not None and not held_out(picture, fraction)):
            continue
        held += 1
        try:
            test_images.append(decode(picture, shape[0], shape[1]))
        except Exception:  # a broken test picture is left out, as in training
            continue
        test_labels.append(example.get(label_column) if label_column else None)
        if len(test_images) == STREAM_TEST_IMAGES:
            break
    else:  # the whole split was read: the held-out share's size is known, not estimated
        if fraction is not None:
            counts[spec.split] = seen - held
            fraction_exact = True
    if shape is None:
        raise DataError(f"the {test_split or spec.split!r} split of {spec.dataset} is empty")
    if not test_images:
        raise DataError(f"{spec.dataset} has no test images: pass --test-split, or raise --test-fraction")
    if label_column and class_names is None:
        class_names = names_of([v for v in test_labels if v is not None])
    total = counts.get(spec.split)
    n = spec.max_train_images
    if n is None:
        if total is None:
            raise DataError(
                f"the number of pictures in the {spec.split!r} split of {spec.dataset} is not known: pass "
                "--max-train-images N to train on N per epoch"
            )
        n = total if fraction is None or fraction_exact else int(total * (1 - fraction))
    stream = ImageStream(
        open_split(spec.split), column, label_column, class_names, shape, n,
        test_fraction=fraction, seed=spec.seed, buffer_size=spec.shuffle_buffer,
        exact_size=spec.image_size is None, strict=spec.strict_data,
    )  # fmt: skip
    test = ImageData(
        torch.from_numpy(np.stack(test_images)),
        torch.tensor([class_index(v, class_names) for v in test_labels], dtype=torch.long),
        class_names,
    )
    name = spec.dataset if kind == "hub" else Path(spec.dataset).expanduser().resolve().name
    if fraction is None:
        note = (
            f"its {test_split!r} split ({'the first ' if len(test) == STREAM_TEST_IMAGES else ''}{len(test):,} images)"
        )
    else:
        note = (
            f"{len(test):,} pictures of the {spec.split!r} split of {name}, streamed, whose content hash falls in a "
            f"{fraction:.0%} share, held out from training"
        )
    return Splits(stream, test, name, name, spec.dataset if kind == "hub" else None, note, n)  # type: ignore[arg-type]
