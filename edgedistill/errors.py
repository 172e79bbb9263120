"""Errors a user can act on.

Every error the CLI shows without a traceback derives from :class:`EdgeDistillError`;
its message is one line saying what is wrong and what to do.
"""

from __future__ import annotations


class EdgeDistillError(Exception):
    """Base class: a problem with the user's input or environment, reported in one line."""


class ConfigError(EdgeDistillError):
    """The YAML config (or an argument standing in for it) is invalid."""


class InputError(EdgeDistillError):
    """A model, data file or shape given to a stage cannot be used."""


class VerificationError(EdgeDistillError):
    """An artifact disagrees with its reference beyond tolerance."""


class MissingDependencyError(EdgeDistillError):
    """An optional package needed for the requested backend or feature is not installed."""
