"""Errors of the DICOM readers, writers and network: each names the file or the peer at fault."""

from __future__ import annotations

from openiort.errors import OpenIortInputError


class DicomError(OpenIortInputError):
    """Base class of the DICOM errors (input errors: reported, never a crash)."""


class DicomImportError(DicomError):
    """A DICOM file or series that cannot be imported; the message names the file."""


class DicomExportError(DicomError):
    """Inputs that cannot be written as valid DICOM (the message says which value)."""


class DicomSendError(DicomError):
    """A C-STORE that failed: peer unreachable, association refused or a store rejected."""


class PlanDirError(OpenIortInputError):
    """A plan directory (plan.json + plan_arrays.npz) that is missing or malformed."""
