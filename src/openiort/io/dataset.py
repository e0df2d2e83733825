"""One guarded DICOM file read, shared by the readers (``openiort.inputs``) and the writers.

pydicom's warnings and log records are silenced while reading (they can quote attribute values,
and patient data must not reach logs); every failure becomes one ``DicomImportError`` that names
the file.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from openiort.io.errors import DicomImportError

T = TypeVar("T")


@contextmanager
def quiet_pydicom() -> Iterator[None]:
    """Silence pydicom's warnings and log records while reading: they can quote attribute
    values (patient data must not reach logs), and every real problem becomes an error."""
    logger = logging.getLogger("pydicom")
    level = logger.level
    logger.setLevel(logging.CRITICAL + 1)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def import_error(path: Path, message: str) -> DicomImportError:
    """The error for a problem with the file ``path``: the message starts with the path."""
    return DicomImportError(f"{path}: {message}")


def guarded(path: Path, what: str, func: Callable[[], T]) -> T:
    """Run ``func``; turn any failure other than DicomImportError into one naming ``path``."""
    try:
        return func()
    except DicomImportError:
        raise
    except Exception as exc:  # malformed input can fail anywhere inside pydicom or numpy
        raise import_error(path, f"{what}: {type(exc).__name__}: {exc}") from exc


def read_dataset(path: Path) -> Dataset:
    """Read a DICOM Part 10 file; any failure is a DicomImportError naming the file."""
    with quiet_pydicom():
        return _read_dataset(path)


def _read_dataset(path: Path) -> Dataset:

    def load() -> Dataset:
        try:
            return pydicom.dcmread(path)
        except InvalidDicomError as exc:
            raise import_error(path, f"not a DICOM file ({exc})") from exc

    return guarded(path, "cannot read", load)
