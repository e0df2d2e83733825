"""Deferred tally additions: prefetch a voxel's tally line now, add to it a few steps later.

The scoring walk adds to a voxel tally that does not fit in the core's cache (8 bytes per
voxel: 1.7 million voxels in the bench's breast cube, 7 million in the demo case), so most
additions miss. Added at once, each miss stalls the walk until the line arrives. Here an addition is queued and its cache line prefetched; the
addition itself is made ``QUEUE_SIZE`` additions later, when the line is there, so the misses
of many steps overlap. The additions are made in the order they were queued, so every voxel
sums the same terms in the same order as with immediate additions: identical results.
Measured on the breast cube: about 18 % more histories per second (queue of 16; 8 gave
4 %, 32 no more than 16).
"""

from __future__ import annotations

import llvmlite.binding as llvm
import numpy as np
from llvmlite import ir
from numba import njit
from numba.core import cgutils, types
from numba.extending import intrinsic

QUEUE_SIZE = 16  # a power of two (the slot is the count masked)
# LLVM 15 made pointers opaque and renamed the overloaded intrinsic accordingly
_PREFETCH = "llvm.prefetch.p0" if llvm.llvm_version_info >= (15,) else "llvm.prefetch.p0i8"


@intrinsic
def prefetch_row_for_write(typingctx, array, row):  # type: ignore[no-untyped-def]
    """Prefetch the cache line of ``array[row, 0]`` (2D array) ahead of a write."""
    sig = types.void(array, row)

    def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
        array_type = signature.args[0]
        arr = context.make_array(array_type)(context, builder, args[0])
        zero = context.get_constant(types.intp, 0)
        ptr = cgutils.get_item_pointer(context, builder, array_type, arr, [args[1], zero])
        byte_ptr = ir.PointerType(ir.IntType(8))
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [byte_ptr, i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, _PREFETCH)
        # rw = 1 (write), locality = 3 (keep in all cache levels), cache type = 1 (data)
        args_ = [builder.bitcast(ptr, byte_ptr), ir.Constant(i32, 1), ir.Constant(i32, 3)]
        builder.call(fn, [*args_, ir.Constant(i32, 1)])
        return context.get_dummy_value()

    return sig, codegen


@njit(cache=True, inline="always")
def queue_add(
    tally: np.ndarray,
    q_voxel: np.ndarray,
    q_value: np.ndarray,
    count: int,
    v: int,
    value0: float,
    value1: float,
) -> int:
    """Queue ``tally[v] += (value0, value1)`` and make the addition queued ``QUEUE_SIZE``
    earlier. ``count`` is the number of additions queued so far; returns it plus one."""
    slot = count & (QUEUE_SIZE - 1)
    if count >= QUEUE_SIZE:
        old = q_voxel[slot]
        tally[old, 0] += q_value[slot, 0]
        tally[old, 1] += q_value[slot, 1]
    q_voxel[slot] = v
    q_value[slot, 0] = value0
    q_value[slot, 1] = value1
    prefetch_row_for_write(tally, v)  # type: ignore[call-arg]  # (typingctx is numba's)
    return count + 1


@njit(cache=True, inline="always")
def queue_flush(tally: np.ndarray, q_voxel: np.ndarray, q_value: np.ndarray, count: int) -> None:
    """Make the additions still queued, oldest first."""
    for k in range(max(0, count - QUEUE_SIZE), count):
        slot = k & (QUEUE_SIZE - 1)
        v = q_voxel[slot]
        tally[v, 0] += q_value[slot, 0]
        tally[v, 1] += q_value[slot, 1]
