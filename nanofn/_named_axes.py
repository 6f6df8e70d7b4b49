"""Named axes: the environment that tells a collective which axis a name refers to.

`lax.psum(x, "batch")` means "sum `x` over every instance of this program along the axis
named `batch`". Two kinds of transformation bind a name:

* `vmap(f, axis_name="batch")` binds it to a *batch* axis. All instances live in this
  process as one batched array, so a collective over the name is an array operation along
  the batch dimension (a reduction, a transpose, ...). The frame remembers the vmap's
  `MainTrace`, so the collective can be routed to that vmap's `BatchTrace`.
* `pmap(f, axis_name="batch")` binds it to a *device* axis. Each instance is one device
  (one process under `nanofn.distributed`), so a collective over the name is a message
  exchange: the frame holds the `group` that performs it (MPI, or the one-device group).

Frames nest like scopes: the innermost frame with a name wins, and a name no frame binds
is a `NameError` that names it. A collective over a device axis records the frame itself
in its params (it prints as the name): a backward pass that runs after `pmap` returns,
as in `grad(pmap(f))`, still reaches the same devices.
"""

from __future__ import annotations

from typing import Any

from nanofn import _core as core


class AxisFrame:
    """One bound axis name: its size, and what carries it (a vmap trace or a device group)."""

    __slots__ = ("group", "main", "name", "size")

    def __init__(self, name, size: int, main=None, group=None):
        self.name = name
        self.size = int(size)
        self.main = main      # the vmap's MainTrace, for a batch axis
        self.group = group    # the device group, for a pmap axis

    def __str__(self):  # how a jaxpr prints a collective's resolved axis
        return repr(self.name)

    def __repr__(self):
        kind = "vmap" if self.main is not None else "device"
        return f"AxisFrame({self.name!r}, size={self.size}, {kind})"


def _env() -> list[AxisFrame]:
    """The frames bound in this thread, innermost last (kept with the trace state)."""
    return core._state.axis_env


class extend_axis_env:
    """`with extend_axis_env(frame):` binds `frame.name` for the duration of the block."""

    __slots__ = ("frame",)

    def __init__(self, frame: AxisFrame):
        self.frame = frame

    def __enter__(self):
        _env().append(self.frame)
        return self.frame

    def __exit__(self, *exc_info):
        _env().remove(self.frame)
        return False


def lookup(name: Any) -> AxisFrame:
    """The innermost frame binding `name`, or a NameError that names it."""
    if type(name) is AxisFrame:  # already resolved (a device axis)
        return name
    for frame in reversed(_env()):
        if frame.name == name:
            return frame
    bound = sorted({repr(f.name) for f in _env()})
    where = (f"the axis names bound here are {', '.join(bound)}" if bound
             else "no axis name is bound here")
    raise NameError(
        f"unbound axis name: {name!r}. A collective (psum, all_gather, axis_index, ...) "
        f"names an axis that an enclosing vmap(..., axis_name=) or pmap(..., axis_name=) "
        f"must bind; {where}.")


def frame_of_main(main) -> AxisFrame | None:
    """The frame a vmap's trace binds, if it was given an axis name."""
    for frame in reversed(_env()):
        if frame.main is main:
            return frame
    return None


def bound_names() -> list:
    return [f.name for f in _env()]
