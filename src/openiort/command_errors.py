"""How every `iort` command reports input errors: one line per problem, exit code 2."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer

from openiort.errors import EXIT_BAD_INPUT, OpenIortInputError


def input_error_exit(
    error: OpenIortInputError, *, code: int = EXIT_BAD_INPUT, wrote_nothing: bool = False
) -> typer.Exit:
    """Print ``error``'s problems to standard error, one line each, and return the exit."""
    for problem in error.problems:
        # A problem that already names its file or option is not prefixed with it again.
        where = "" if problem.startswith(error.source) else f"{error.source}: "
        typer.echo(f"error: {where}{problem}", err=True)
    if wrote_nothing:
        typer.echo("nothing was written", err=True)
    return typer.Exit(code)


@contextmanager
def reported_input_errors(*, wrote_nothing: bool = False) -> Iterator[None]:
    """Turn any :class:`OpenIortInputError` raised inside into its lines and exit code 2."""
    try:
        yield
    except OpenIortInputError as exc:
        raise input_error_exit(exc, wrote_nothing=wrote_nothing) from None
