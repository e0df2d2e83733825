"""The root of every input error, so that one handler can report any of them.

Bad input is expected: a malformed case, a device data file that fails its checks, a corrupt
DICOM series, a geometry that cannot be built. Each such error inherits
:class:`OpenIortInputError` and carries ``problems``, one message per problem, each fit to show
a user (never patient data). The command line prints them one per line and exits with
:data:`EXIT_BAD_INPUT`; the web app shows the same lines beside the case.
"""

from __future__ import annotations

from typing import Any

EXIT_BAD_INPUT = 2


class OpenIortInputError(ValueError):
    """Input that openiort cannot use; ``problems`` holds one message per problem.

    ``source`` names what was read (a file, a command-line option, a device model); by default
    the kind of error.
    """

    def __init__(self, *problems: str, source: str | None = None) -> None:
        self.problems: list[str] = [str(p) for p in problems] or ["invalid input"]
        self.source: str = source or type(self).__name__
        super().__init__("; ".join(self.problems))

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuilt without calling __init__, whose signature subclasses may change (errors
        # cross process boundaries in the web app's planning workers and in Dask).
        return (_restore, (type(self), self.args, dict(self.__dict__)))


def _restore(
    cls: type[OpenIortInputError], args: tuple[Any, ...], state: dict[str, Any]
) -> OpenIortInputError:
    error = cls.__new__(cls)
    error.args = args
    error.__dict__.update(state)
    return error
