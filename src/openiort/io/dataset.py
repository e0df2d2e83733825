"""One guarded DICOM file read, shared by the readers (``openiort.inputs``) and the writers.

pydicom's warnings and log records are silenced while reading (they can quote attribute values,
and patient data must not reach logs); every failure becomes one ``DicomImportError`` that names
the file.
"""

from __future__ import annotations

import logging
import warnings
import zlib
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


# The most a DICOM file may hold once inflated (deflated transfer syntax) or a pixel frame
# decoded: a 1 MB deflated file can otherwise inflate to gigabytes (issue 17). A CT slice of
# 1024 x 1024 x 16 bit is 2 MiB; RTDOSE grids are a few tens of MiB at most.
MAX_INFLATED_BYTES = 256 * 1024 * 1024
DEFLATED_SYNTAX = "1.2.840.10008.1.2.1.99"
_INFLATE_CHUNK = 1024 * 1024


def _check_inflated_size(path: Path, limit: int) -> None:
    """Refuse a deflated file whose data set inflates beyond ``limit`` bytes, by inflating it
    in bounded chunks before pydicom inflates it whole."""
    with path.open("rb") as fh:
        head = fh.read(144)
        if len(head) < 144 or head[128:132] != b"DICM" or head[132:136] != b"\x02\x00\x00\x00":
            return  # not the common layout: pydicom reads (or refuses) it as before
        meta_length = int.from_bytes(head[140:144], "little")
        meta = fh.read(meta_length)
        if DEFLATED_SYNTAX.encode("ascii") not in meta:
            return
        inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        total = 0
        while chunk := fh.read(_INFLATE_CHUNK):
            data = inflater.decompress(chunk, limit + 1 - total)
            total += len(data)
            while inflater.unconsumed_tail and total <= limit:
                data = inflater.decompress(inflater.unconsumed_tail, limit + 1 - total)
                total += len(data)
            if total > limit:
                raise import_error(
                    path,
                    f"the deflated data set inflates to more than {limit // (1024 * 1024)} MiB: "
                    "refused (no CT slice or dose grid is that large)",
                )


def read_dataset(path: Path) -> Dataset:
    """Read a DICOM Part 10 file; any failure is a DicomImportError naming the file, and so is
    a deflated file that inflates beyond :data:`MAX_INFLATED_BYTES`."""
    with quiet_pydicom():
        guarded(path, "cannot read", lambda: _check_inflated_size(path, MAX_INFLATED_BYTES))
        return _read_dataset(path)


def _read_dataset(path: Path) -> Dataset:

    def load() -> Dataset:
        try:
            return pydicom.dcmread(path)
        except InvalidDicomError as exc:
            raise import_error(path, f"not a DICOM file ({exc})") from exc

    return guarded(path, "cannot read", load)
