"""The in-repo copies of the literature reference pack: complete, unchanged, documented.

Tests in other folders compare the package's data with these files; this test makes sure the
files they read are the recorded copies (tests/reference_data/README.md).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

REFERENCE_DATA = Path(__file__).resolve().parents[1] / "reference_data"
NOT_COPIES = {"README.md", "SHA256SUMS"}


def _recorded() -> dict[str, str]:
    """path -> SHA-256 from SHA256SUMS (``sha256sum`` format: hash, two spaces, path)."""
    recorded = {}
    for line in (REFERENCE_DATA / "SHA256SUMS").read_text(encoding="utf-8").splitlines():
        digest, name = line.split("  ", 1)
        recorded[name] = digest
    return recorded


def test_every_copy_is_recorded_and_unchanged() -> None:
    on_disk = {
        p.relative_to(REFERENCE_DATA).as_posix()
        for p in REFERENCE_DATA.rglob("*")
        if p.is_file() and p.relative_to(REFERENCE_DATA).as_posix() not in NOT_COPIES
    }
    recorded = _recorded()
    assert on_disk == set(recorded)
    for name, digest in recorded.items():
        assert hashlib.sha256((REFERENCE_DATA / name).read_bytes()).hexdigest() == digest, name


def test_every_copy_is_named_in_the_readme_and_small() -> None:
    readme = (REFERENCE_DATA / "README.md").read_text(encoding="utf-8")
    for name in _recorded():
        assert Path(name).name in readme, name
        # Copies of literature tables, not bulk data: 2 MB is far above any of them.
        assert (REFERENCE_DATA / name).stat().st_size < 2_000_000, name
