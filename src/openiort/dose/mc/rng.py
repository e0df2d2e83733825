"""Counter-based random streams: one independent stream per (seed, batch, photon).

Each photon's generator state is a SplitMix64 hash of the batch key and the photon index, and
the photon then draws from a SplitMix64 sequence (Steele, Lea & Flood, OOPSLA 2014). A photon's
random numbers therefore depend only on (seed, batch, photon index): results are identical
whatever the number of threads or Dask workers, and any batch can be recomputed alone.
"""

from __future__ import annotations

import numpy as np
from numba import njit

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S11 = np.uint64(11)
_INV53 = 1.0 / 9007199254740992.0  # 2**-53


@njit(cache=True, inline="always")
def mix64(z: np.uint64) -> np.uint64:
    """SplitMix64 finaliser (a bijective avalanche hash of 64 bits)."""
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


_MASK = (1 << 64) - 1


def _mix64_int(z: int) -> int:
    """The same SplitMix64 finaliser on Python integers (for keys built outside numba)."""
    z &= _MASK
    z = ((z ^ (z >> 30)) * int(_M1)) & _MASK
    z = ((z ^ (z >> 27)) * int(_M2)) & _MASK
    return z ^ (z >> 31)


def batch_key(seed: int, batch: int) -> np.uint64:
    """Key of one batch, derived from the run seed and the batch index only."""
    if seed < 0 or batch < 0:
        raise ValueError("seed and batch index must be non-negative integers")
    a = _mix64_int(seed + int(_GOLDEN))
    b = _mix64_int(batch * int(_M2) + int(_M1))
    return np.uint64(_mix64_int(a ^ b))


@njit(cache=True, inline="always")
def photon_state(key: np.uint64, photon: int) -> np.uint64:
    """Initial state of one photon's stream."""
    return mix64(key ^ mix64(np.uint64(photon) + _GOLDEN))


@njit(cache=True, inline="always")
def uniform(state: np.ndarray) -> float:
    """Next uniform deviate in (0, 1) from ``state[0]`` (advanced in place)."""
    state[0] += _GOLDEN
    z = mix64(state[0])
    return ((z >> _S11) + 0.5) * _INV53
