"""Codeship Pro's codeship-services.yml and codeship-steps.yml → a Shipway Pipeline.

Pure code apart from reading the two files (and env files) in :func:`convert_directory`:
findings are returned as typed warnings or raised as :class:`ConversionError`, never printed.
"""

from shipway.codeship.convert import (
    AES_KEY_FILE,
    SERVICES_FILES,
    STEPS_FILES,
    Conversion,
    Options,
    convert,
    convert_directory,
    default_name,
    read_aes_key,
)
from shipway.codeship.issues import ConversionError, ConversionWarning, Issue, WarningKind
from shipway.codeship.keys import SERVICE_KEYS, STEP_KEYS, STEP_TYPES, Handling, KeyRule
from shipway.codeship.yamlfile import FileError

__all__ = [
    "AES_KEY_FILE",
    "SERVICES_FILES",
    "SERVICE_KEYS",
    "STEPS_FILES",
    "STEP_KEYS",
    "STEP_TYPES",
    "Conversion",
    "ConversionError",
    "ConversionWarning",
    "FileError",
    "Handling",
    "Issue",
    "KeyRule",
    "Options",
    "WarningKind",
    "convert",
    "convert_directory",
    "default_name",
    "read_aes_key",
]
