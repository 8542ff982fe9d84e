"""Where training images come from: named data sets, folders of pictures, Hugging Face datasets, CIFAR-10.

Every source is decoded once into uint8 tensors (``ImageData``) and split into train and test images
(``Splits``) as a ``DataSpec`` says; folders and datasets are decoded into a file on disk that every run and
process maps (``cache``), or, with ``--streaming``, read as training goes (``streaming.ImageStream``).
``bundled_images`` gives the few thousand pictures that ship with the package.
"""

from .bundled import BundledImages, bundled_images
from .image_data import ImageData, Splits, fixed_binarization, to_unit
from .named_sets import DATASETS, DatasetInfo, load_dataset
from .sources import load_splits
from .spec import DataSpec

__all__ = ["DATASETS", "BundledImages", "DataSpec", "DatasetInfo", "ImageData", "Splits", "bundled_images",
           "fixed_binarization", "load_dataset", "load_splits", "to_unit"]  # fmt: skip
