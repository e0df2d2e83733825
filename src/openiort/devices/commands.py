"""`iort devices manifest DIR`: record the hashes of a department's reviewed device data."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from openiort.datafiles import MANIFEST, compute_manifest, recorded_manifest, write_manifest
from openiort.errors import OpenIortInputError

devices_app = typer.Typer(
    add_completion=False, no_args_is_help=True, help="The department's own device data."
)


@devices_app.callback()
def devices() -> None:
    """The department's own device data (a group, so that `manifest` stays a subcommand)."""


@devices_app.command("manifest")
def manifest(
    folder: Annotated[Path, typer.Argument(help="folder of the department's device data")],
    check: Annotated[
        bool, typer.Option("--check", help="only compare the files with the manifest")
    ] = False,
) -> None:
    """Write FOLDER/manifest_sha256.csv once its files are reviewed (or --check them).

    Plans load department data only while every file matches this manifest, so an edit after
    commissioning is refused until the change is reviewed and the manifest re-made.
    """
    if not folder.is_dir():
        typer.echo(f"error: {folder}: not a folder", err=True)
        raise typer.Exit(2)
    if check:
        try:
            recorded = recorded_manifest(folder)
        except OpenIortInputError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None
        now = compute_manifest(folder)
        changed = sorted(n for n in set(now) | set(recorded) if now.get(n) != recorded.get(n))
        for name in changed:
            typer.echo(f"differs from {MANIFEST}: {name}", err=True)
        if changed:
            raise typer.Exit(1)
        typer.echo(f"{len(now)} files match {folder / MANIFEST}")
        return
    entries = write_manifest(folder, remake=f"iort devices manifest {folder}")
    for name, digest in sorted(entries.items()):
        typer.echo(f"{digest}  {name}")
    typer.echo(f"wrote {folder / MANIFEST} ({len(entries)} files)")
