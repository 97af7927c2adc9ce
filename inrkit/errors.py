"""Exceptions raised for bad input. The CLI turns each into one line and exit status 2."""


class InrkitError(Exception):
    """Base class: a problem with what the user asked for, not a bug in inrkit."""


class SignalError(InrkitError):
    """A signal file is missing, unreadable, corrupt or of an unsupported kind."""


class ModelError(InrkitError):
    """An unknown model name or a model argument that cannot be honoured."""


class ConfigError(InrkitError):
    """An option value out of range (non-positive steps, unknown device, ...)."""


class ExportError(InrkitError):
    """A weights or compressed file is missing, corrupt, truncated or foreign."""


class MissingDependency(InrkitError, ImportError):
    """An optional package is not installed; the message names the `pip install` that adds it."""
