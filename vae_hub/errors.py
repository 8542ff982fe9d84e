"""Exceptions raised when a checkpoint cannot be loaded as it is."""

from __future__ import annotations


class CheckpointError(RuntimeError):
    """A checkpoint is missing, unreachable, corrupt, or does not match the model it claims to be."""


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """A local folder, a file inside it, or a Hub repository does not exist."""
