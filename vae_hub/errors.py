"""Every error vae-hub raises for its user to act on, in one place, under one base class.

Each message says what was wrong and what is expected. ``vae-hub`` prints one as a single ``error:`` line and exits
with its ``exit_code``: 2 for input that cannot be used as it is (the code argparse gives a bad flag), 1 when the
Hub or the network failed (a rerun may succeed).
"""

from __future__ import annotations


class VaeHubError(Exception):
    """Base of vae-hub's errors."""

    exit_code = 2


# --- models from outside: folders, Hub repos, config.json, safetensors ----------------------------------------
class CheckpointError(VaeHubError, RuntimeError):
    """A checkpoint is missing, unreachable, corrupt, or does not match the model it claims to be."""


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """A local folder, a file inside it, or a Hub repository does not exist."""


class UnsupportedModelError(CheckpointError):
    """A valid model of a kind that this command or page does not handle (a VQ-VAE where a VAE is needed)."""


class FieldError(VaeHubError, ValueError):
    """A config value of the wrong type or out of range; the message names the field."""


class HeaderError(VaeHubError, ValueError):
    """The file is not a well-formed safetensors file of floating-point tensors."""


class PublishError(VaeHubError, RuntimeError):
    """The push to the Hub failed; the local folder is untouched and the push can be retried."""

    exit_code = 1


# --- data ------------------------------------------------------------------------------------------------------
class DataError(VaeHubError, ValueError):
    """Training data that cannot be used as it is; the message says what was found and what is expected."""


class DataNotFoundError(DataError, FileNotFoundError):
    """The data set's files are not where they were looked for, and could not be downloaded."""


class DataNotAvailableError(DataError):
    """The dataset could not be fetched (offline, unknown id, ``datasets`` not installed)."""


class IDXFormatError(DataError):
    """A file that should be an IDX file of unsigned bytes is not one, or is cut short."""


class CIFARFormatError(DataError):
    """A CIFAR-10 batch file is not one: an unexpected global in its pickle, wrong contents, or the wrong size."""


class ImageInputError(VaeHubError, ValueError):
    """A picture that cannot be turned into model input; the message says what is wrong and what is expected."""


# --- training --------------------------------------------------------------------------------------------------
class SettingsError(VaeHubError, ValueError):
    """Training settings out of range or in conflict, found before any data is read; the message names each flag."""


class TrainingDivergedError(VaeHubError, RuntimeError):
    """The loss became NaN or infinite."""


# --- the Space -------------------------------------------------------------------------------------------------
class ModelLoadError(VaeHubError, ValueError):
    """A model name that cannot be loaded; the message is safe to show in the page."""


class SpaceFolderError(VaeHubError, ValueError):
    """A model cannot go into the Space, or a Space folder's models.json is not what it should be."""


class GradioChangedError(VaeHubError, RuntimeError):
    """The patched Gradio function is not the one the patch was written for."""
