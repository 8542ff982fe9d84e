"""Which images a run trains and is tested on: one dataclass, stored with the model and read back to evaluate it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from ..limits import MAX_IMAGE_SIDE
from ..settings import flag_name, option, with_role
from .named_sets import DATASETS


@dataclass
class DataSpec:
    """The data settings of ``vae-hub train`` (``TrainConfig.data``), written to ``metrics.json`` as ``data_spec``.

    Fields marked ``decoded`` change the decoded images (and so the cache's key); ``test_split_of`` ones decide which
    images are held out for testing, so ``vae-hub evaluate`` rebuilds the same test split from them.
    """

    dataset: str = option(
        "mnist",
        f"a data set ({', '.join(DATASETS)}), a folder of images (class labels from sub-folder names), a folder "
        "written by datasets' save_to_disk, parquet file(s), or a Hugging Face Hub dataset id",
        metavar="NAME|PATH|HUB_ID", test_split_of=True,
    )  # fmt: skip
    data_dir: str = option(
        "data", "for a named data set: torchvision layout, or a folder with the IDX (.gz) files", test_split_of=True
    )
    image_size: int | None = option(None, "your images: scale and centre-crop to SxS (default: their own size)",
                                    metavar="S", decoded=True)  # fmt: skip
    channels: int | None = option(None, "your images: 1 (grey) or 3 (RGB) (default: 3 if any is in colour)",
                                  metavar="C", decoded=True)  # fmt: skip
    test_fraction: float = option(0.1, "your images: the share held out for testing when there is no test split",
                                  decoded=True, test_split_of=True)  # fmt: skip
    strict_data: bool = option(False, "your images: refuse the data if a file is unreadable (default: skip it)",
                               decoded=True)  # fmt: skip
    image_column: str | None = option(None, "a Hugging Face dataset's image column (default: detected)",
                                      metavar="NAME", decoded=True, test_split_of=True)  # fmt: skip
    label_column: str | None = option(None, "a Hugging Face dataset's label column (default: detected)",
                                      metavar="NAME", decoded=True, test_split_of=True)  # fmt: skip
    split: str = option("train", "a Hugging Face dataset's split to train on", decoded=True, test_split_of=True)
    test_split: str | None = option(None, "a Hugging Face dataset's test split (default: 'test' when there is one)",
                                    metavar="NAME", decoded=True, test_split_of=True)  # fmt: skip
    seed: int = option(0, "random seed (of the run, and of the images held out for testing)", decoded=True,
                       test_split_of=True)  # fmt: skip
    binarize: bool = option(False, "dynamic binarization of the training images (a fixed one of the test images)",
                            test_split_of=True)  # fmt: skip
    decode_workers: int | None = option(None, "your images: processes that decode them (default: one per CPU core)",
                                        metavar="N")  # fmt: skip
    streaming: bool = option(False, "a Hugging Face dataset: read it as a stream instead of decoding it to disk "
                             "(for data larger than the disk)", test_split_of=True)  # fmt: skip
    shuffle_buffer: int = option(10_000, "with --streaming: shuffle within a buffer of this many pictures",
                                 metavar="N")  # fmt: skip
    max_train_images: int | None = option(None, "train on the first N images only (with --streaming: N per epoch)",
                                          metavar="N")  # fmt: skip
    download: bool = option(True, "never try to download data", flag="--no-download")
    cache_dir: str | None = option(None, "where unpacked data sets go (default ~/.cache/vae-hub)", test_split_of=True)

    @property
    def data(self) -> DataSpec:
        """The data settings alone (a ``DataSpec``, also of a subclass such as ``TrainConfig``)."""
        return DataSpec(**{f.name: getattr(self, f.name) for f in fields(DataSpec)})

    def data_problems(self) -> list[str]:
        """What is wrong with the data settings.

        Returns:
            One message per wrong setting, naming its flag; empty when nothing is.
        """
        flag = {f.name: flag_name(f) for f in fields(DataSpec)}
        problems = []
        if not self.dataset:
            problems.append(f"{flag['dataset']} must name a data set, a folder or a Hub dataset id")
        if self.image_size is not None and not 1 <= self.image_size <= MAX_IMAGE_SIDE:
            problems.append(f"{flag['image_size']} must be in [1, {MAX_IMAGE_SIDE}], got {self.image_size}")
        if self.channels not in (None, 1, 3):
            problems.append(f"{flag['channels']} must be 1 or 3, got {self.channels}")
        if not 0 < self.test_fraction < 1:
            problems.append(f"{flag['test_fraction']} must be between 0 and 1, got {self.test_fraction}")
        if self.decode_workers is not None and self.decode_workers < 1:
            problems.append(
                f"{flag['decode_workers']} must be >= 1 (or left out for one per core), got {self.decode_workers}"
            )
        if self.shuffle_buffer < 1:
            problems.append(f"{flag['shuffle_buffer']} must be >= 1, got {self.shuffle_buffer}")
        if self.max_train_images is not None and self.max_train_images < 1:
            problems.append(
                f"{flag['max_train_images']} must be >= 1 (or left out for all images), got {self.max_train_images}"
            )
        return problems

    def decoded_settings(self) -> dict[str, Any]:
        """The settings the decoded images depend on besides the source itself: the decoded cache's key.

        Returns:
            Setting name to value.
        """
        return {name: getattr(self, name) for name in with_role(DataSpec, "decoded")}

    def to_json(self) -> dict[str, Any]:
        """The data settings as stored in ``metrics.json`` (its ``data_spec``).

        Returns:
            Setting name to value.
        """
        return asdict(self.data)

    @classmethod
    def from_json(cls, values: Any) -> DataSpec:
        """The data settings stored in a ``metrics.json``.

        Args:
            values: Its ``data_spec``, or the flat ``config`` of a folder written before there was one; unknown keys
                are ignored.

        Returns:
            A ``DataSpec``.

        Raises:
            ValueError: For a value of the wrong type, naming the setting.
        """
        if not isinstance(values, dict):
            raise ValueError(f"the stored data settings must be a JSON object, got {type(values).__name__}")
        spec = cls()
        hints = {"str": "a string", "int": "an integer", "float": "a number", "bool": "true or false"}
        for f in fields(DataSpec):
            if f.name not in values or values[f.name] is None:
                continue
            value, kinds = values[f.name], [k.strip() for k in str(f.type).split("|") if k.strip() != "None"]
            ok = any(
                (kind == "float" and type(value) in (int, float)) or type(value).__name__ == kind for kind in kinds
            )
            if not ok:
                expected = " or ".join(hints.get(kind, kind) for kind in kinds)
                raise ValueError(f"the stored data setting {f.name} is {value!r}, not {expected}")
            setattr(spec, f.name, value)
        return spec

    def test_split_settings(self) -> dict[str, Any]:
        """The settings that decide which images are the test split.

        Returns:
            Setting name to value.
        """
        return {name: getattr(self, name) for name in with_role(DataSpec, "test_split_of")}
