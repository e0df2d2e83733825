"""The deferred tally additions sum the same terms in the same order as immediate ones."""

from __future__ import annotations

import numpy as np
from numba import njit

from openiort.dose.mc.tally_queue import QUEUE_SIZE, queue_add, queue_flush


@njit(cache=True)
def _queued(n_voxels, voxels, values):
    tally = np.zeros((n_voxels, 2), np.float32)
    q_voxel = np.zeros(QUEUE_SIZE, np.int64)
    q_value = np.zeros((QUEUE_SIZE, 2))
    count = 0
    for k in range(voxels.size):
        count = queue_add(tally, q_voxel, q_value, count, voxels[k], values[k, 0], values[k, 1])
    queue_flush(tally, q_voxel, q_value, count)
    return tally


@njit(cache=True)
def _immediate(n_voxels, voxels, values):
    tally = np.zeros((n_voxels, 2), np.float32)
    for k in range(voxels.size):
        tally[voxels[k], 0] += values[k, 0]
        tally[voxels[k], 1] += values[k, 1]
    return tally


def test_queued_additions_equal_immediate_ones_bit_for_bit() -> None:
    rng = np.random.default_rng(1)
    for n_terms in (0, 1, QUEUE_SIZE - 1, QUEUE_SIZE, QUEUE_SIZE + 1, 5000):
        # few voxels: the same voxel recurs within the queue's window
        voxels = rng.integers(0, 7, n_terms)
        values = rng.random((n_terms, 2)) * 10.0 ** rng.uniform(-3, 3, (n_terms, 1))
        np.testing.assert_array_equal(_queued(7, voxels, values), _immediate(7, voxels, values))
