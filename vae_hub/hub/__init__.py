"""Models in and out of files: ``config.json`` + ``model.safetensors``, in a folder or a Hugging Face Hub repo.

Everything from outside is checked before anything is allocated: the names and sizes of the files
(``files``), each config value against its rule (``config_rules``), the safetensors header (``safetensors_reader``).
``publish`` pushes a model folder to the Hub.
"""

from .publish import publish
from .save_load import load_model, save_model

__all__ = ["load_model", "publish", "save_model"]
