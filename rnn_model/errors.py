"""The exception tree of rnn_model. Every error a user can cause names the problem and the fix.

ForecastError                 base class; catch this to handle anything the library raises
├── ConfigError (ValueError)  a configuration field is out of range (names field, value, allowed)
├── DataError                 the input data cannot be used
│   ├── DataReadError         the file/directory is missing, empty or not Parquet
│   └── DataValidationError   the data breaks the contract; ``.report`` holds every problem
├── RegistryError             the model store is inconsistent (missing version, bad pointer)
│   └── ModelLoadError        a model bundle is missing files or cannot be loaded safely
└── StoreError                writing to the store failed (read-only, lock held, bad path)
"""

from __future__ import annotations

__all__ = [
    "ForecastError",
    "ConfigError",
    "DataError",
    "DataReadError",
    "DataValidationError",
    "RegistryError",
    "ModelLoadError",
    "StoreError",
]


class ForecastError(Exception):
    """Base class of every error raised by rnn_model."""


class ConfigError(ForecastError, ValueError):
    """A configuration value is invalid. The message names the field, the value and what is allowed."""


class DataError(ForecastError):
    """The input data cannot be used."""


class DataReadError(DataError):
    """The input path is missing, empty, or not readable as Parquet."""


class DataValidationError(DataError):
    """The data breaks the contract under the configured policies.

    ``report`` is the full :class:`rnn_model.schema.ValidationReport` (every problem, not only the first).
    """

    def __init__(self, message: str, report=None):
        super().__init__(message)
        self.report = report


class RegistryError(ForecastError):
    """The model registry does not hold what was asked for (unknown version, no champion...)."""


class ModelLoadError(RegistryError):
    """A model bundle is incomplete or corrupt."""


class StoreError(ForecastError):
    """Writing to the store failed: read-only location, path escaping the store, lock held."""
