"""Tracebacks that show the user's code, not nanofn's insides (JAX's traceback filtering).

An error raised in a function given to `grad`, `jit`, `vmap`, ... (or raised by nanofn
about such a function) travels up through many frames of the transforms before it reaches
the user. Each public transform is an *API boundary*: when an exception leaves it, the
frames that belong to nanofn's own files (and to the code `jit` generates) are cut from
the traceback, so what is printed is the user's call, the user's function and the line
that failed. One frame of nanofn stays, the boundary that re-raised the error (Python
always records the frame that raises), named `reraise_with_filtered_traceback`, as in JAX.

The full traceback is one switch away: `nanofn.config.update("jax_traceback_filtering",
"off")`, or the environment variable `JAX_TRACEBACK_FILTERING=off` (or
`NANOFN_TRACEBACK_FILTERING=off`) set before nanofn is imported.
"""

from __future__ import annotations

import functools
import os
import types

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def _is_nanofn_frame(frame) -> bool:
    fname = frame.f_code.co_filename
    return fname.startswith("<nanofn") or os.path.abspath(fname).startswith(_PACKAGE_DIR)


def filter_traceback(tb):
    """`tb` without the frames of nanofn's files (a new traceback chain; `tb` is unchanged)."""
    kept = []
    while tb is not None:
        if not _is_nanofn_frame(tb.tb_frame):
            kept.append((tb.tb_frame, tb.tb_lasti, tb.tb_lineno))
        tb = tb.tb_next
    out = None
    for frame, lasti, lineno in reversed(kept):
        out = types.TracebackType(out, frame, lasti, lineno)
    return out


def filtering_enabled() -> bool:
    from nanofn._config import config
    return config.jax_traceback_filtering != "off"


def api_boundary(fun):
    """Wrap a public entry point so exceptions leaving it carry a filtered traceback."""

    @functools.wraps(fun)
    def reraise_with_filtered_traceback(*args, **kwargs):
        __tracebackhide__ = True  # noqa: F841  (pytest and IPython hide this frame too)
        try:
            return fun(*args, **kwargs)
        except Exception as e:
            if not filtering_enabled():
                raise
            # a bare re-raise keeps the exception's cause and context as they were
            raise e.with_traceback(filter_traceback(e.__traceback__))

    return reraise_with_filtered_traceback
