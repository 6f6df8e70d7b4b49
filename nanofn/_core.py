"""The core: abstract values, arrays, primitives, traces and the jaxpr IR.

Everything nanofn does rests on four ideas, which this file holds and nothing else:

* An **abstract value** (`ShapedArray`) is what a transform knows about an array without
  looking at its numbers: its shape and dtype.

* A **primitive** is an operation nanofn knows how to transform. It is a name plus slots for
  its rules: `impl` (compute it on numpy arrays), `abstract_eval` (the output's shape and
  dtype), and the differentiation and batching rules that `nanofn/_ad.py` and
  `nanofn/_batching.py` look up. Every primitive lives in the one `registry` below, and
  `nanofn/ops` fills in its rules, all side by side.

* A **trace** interprets primitives. Calling `bind(prim, *args)` finds the innermost
  active transformation among the arguments (the trace with the highest *level*) and asks
  it to `process_primitive`. With no transformation active, `bind` runs `impl` straight
  away: that is eager mode. Each transformation wraps the values it follows in its own
  `Tracer` subclass; a tracer belongs to one `MainTrace`, and levels keep nested
  transformations apart, so `grad(grad(f))` differentiates the right thing.

* A **jaxpr** is a recorded program: typed input variables, a list of equations
  `outs = prim[params] ins`, and outputs. `make_jaxpr` records one by tracing with
  abstract values only (the `JaxprTrace`), `eval_jaxpr` replays one by binding each
  equation, and because replaying binds, a jaxpr can itself be transformed.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import operator
import sys
import threading
from typing import Any, Callable

import numpy as np

# ------------------------------------------------------------------------ floating-point warnings


def _quiet_switch():
    """`(enter, leave)`: turn numpy's floating-point warnings off and back on, as
    `np.errstate(all="ignore")` does, but without building a context manager per call (that
    costs more than a ufunc on a small array). Uses numpy's own context variable when this
    numpy has it, else `np.errstate`."""
    try:
        from numpy._core.umath import _extobj_contextvar, _make_extobj
        ignore = _make_extobj(all="ignore")
        set_var, reset_var = _extobj_contextvar.set, _extobj_contextvar.reset
        return (lambda: set_var(ignore)), reset_var
    except (ImportError, AttributeError, TypeError):  # another numpy: the public way
        def enter():
            state = np.errstate(all="ignore")
            state.__enter__()
            return state
        return enter, lambda state: state.__exit__(None, None, None)


# Primitive impls run between these two (eagerly in `bind`, and inside every jit plan):
# nanofn returns inf and nan where numpy would warn about them, as JAX does.
quiet_enter, quiet_leave = _quiet_switch()


# ------------------------------------------------------------------------ errors

class ConcretizationError(TypeError):
    """A concrete value was needed where only an abstract (traced) value exists."""


class UnexpectedTracerError(TypeError):
    """A tracer outlived the transformation that created it."""


class TracerArrayConversionError(TypeError):
    """A traced value was handed to numpy, which needs concrete numbers."""


class TracerBoolConversionError(ConcretizationError):
    """`bool()` (an `if`, `while`, `and`) of a traced value whose value is not known."""


class TracerIntegerConversionError(ConcretizationError):
    """`int()`, `range()` or an index made from a traced value whose value is not known."""


class NonConcreteBooleanIndexError(ConcretizationError, IndexError):
    """Indexing with a boolean mask whose values are traced (the result's shape would
    depend on them). An IndexError, as in JAX, and a ConcretizationError."""


class ShapeError(ValueError, TypeError):
    """Operand shapes that do not fit together (a `dot` or `reshape` mismatch, arrays that
    do not broadcast). A TypeError, as JAX raises, and a ValueError, as numpy raises."""


class IndexTypeError(IndexError, TypeError):
    """An index array of a type that cannot index (floats). An IndexError, as numpy raises,
    and a TypeError, as JAX raises."""


# ------------------------------------------------------------------------ avals

_SHORT_DTYPE = {
    "float16": "f16", "float32": "f32", "float64": "f64", "int8": "i8", "int16": "i16",
    "int32": "i32", "int64": "i64", "uint8": "u8", "uint16": "u16", "uint32": "u32",
    "uint64": "u64", "bool": "bool", "complex64": "c64", "complex128": "c128",
}


class ShapedArray:
    """The abstract value of an array: its shape and dtype, nothing else."""

    __slots__ = ("shape", "dtype")

    def __init__(self, shape, dtype):
        self.shape = tuple(map(int, shape))
        self.dtype = np.dtype(dtype)

    ndim = property(lambda self: len(self.shape))
    size = property(lambda self: int(np.prod(self.shape, dtype=np.int64)))

    def update(self, shape=None, dtype=None) -> "ShapedArray":
        return ShapedArray(self.shape if shape is None else shape,
                           self.dtype if dtype is None else dtype)

    def __eq__(self, other):
        return (type(other) is ShapedArray and self.shape == other.shape
                and self.dtype == other.dtype)

    def __hash__(self):
        return hash((self.shape, self.dtype))

    def str_short(self) -> str:
        return f"{_SHORT_DTYPE.get(self.dtype.name, self.dtype.name)}[{','.join(map(str, self.shape))}]"

    __str__ = str_short

    def __repr__(self):  # JAX's form: ShapedArray(float32[3,2])
        return f"ShapedArray({self.dtype.name}[{','.join(map(str, self.shape))}])"


_PY_SCALAR_DTYPE = {bool: np.dtype(np.bool_), int: np.dtype(np.int32),
                    float: np.dtype(np.float32), complex: np.dtype(np.complex64)}


def get_aval(x) -> ShapedArray:
    """The abstract value of an array, tracer, numpy value or Python scalar."""
    if isinstance(x, Tracer):
        return x.aval
    if isinstance(x, (Array, np.ndarray, np.generic)):
        return ShapedArray(x.shape, x.dtype)
    dtype = _PY_SCALAR_DTYPE.get(type(x))
    if dtype is not None:
        return ShapedArray((), dtype)
    raise TypeError(f"{type(x).__name__} is not a valid nanofn array type: {x!r}")


class IntegerOverflowError(OverflowError, ValueError):
    """A Python int too large for the integer dtype it must become (an OverflowError, as in
    JAX, and a ValueError, as every bad value nanofn refuses)."""


def scalar_value(x):
    """A Python scalar as a numpy value of its default dtype (`int` -> int32, ...)."""
    dtype = _PY_SCALAR_DTYPE[type(x)]
    try:
        return np.asarray(x, dtype)
    except OverflowError:
        raise IntegerOverflowError(f"{caller_name()}: the Python int {x} does not fit the "
                                   f"default integer dtype {dtype}") from None


def is_array_like(x) -> bool:
    return isinstance(x, (Tracer, Array, np.ndarray, np.generic)) or type(x) in _PY_SCALAR_DTYPE


# ------------------------------------------------------------------------ Array


class _ArrayMeta(type):
    """`isinstance(x, Array)` is true for traced values too, as for `jax.Array`: code
    written for JAX checks it inside transformed functions. (An exact type never reaches
    this method, so concrete arrays pay nothing; inside nanofn, `type(x) is Array` asks
    for a concrete array.)"""

    def __instancecheck__(cls, x):
        return isinstance(x, Tracer)


class Array(metaclass=_ArrayMeta):
    """An immutable array: nanofn's concrete value, wrapping a numpy array.

    `np.asarray(a)` gives a read-only view of the same memory, without a copy. Operators
    and methods (`+`, `@`, `a.sum()`, `a.at[i].set(v)`, ...) are installed by
    `nanofn.numpy`, so they work the same on arrays and on traced values. As for
    `jax.Array`, `isinstance(x, Array)` is true for traced values as well; `type(x) is
    Array` tells a concrete array.

    Example:
        >>> import nanofn.numpy as fnp
        >>> x = fnp.array([1.0, 2.0])
        >>> x * 2
        Array([2., 4.], dtype=float32)
    """

    __slots__ = ("_value", "__weakref__")
    __array_priority__ = 100

    def __init__(self, value):
        self._value = value

    # C-level getters (no Python frame): these are read on every operation
    shape = property(operator.attrgetter("_value.shape"))
    dtype = property(operator.attrgetter("_value.dtype"))
    ndim = property(operator.attrgetter("_value.ndim"))
    size = property(operator.attrgetter("_value.size"))
    aval = property(lambda self: ShapedArray(self._value.shape, self._value.dtype))

    def __array__(self, dtype=None, copy=None):
        if copy:
            return np.array(self._value, dtype=dtype, copy=True)
        value = self._value if isinstance(self._value, np.ndarray) else np.asarray(self._value)
        # seen through a read-only memoryview, so numpy refuses to make it writable again (a
        # plain view's flag could be flipped back): no one can write into nanofn's buffers
        out = np.asarray(memoryview(value).toreadonly())
        return out if dtype is None else out.astype(dtype, copy=False)

    def __repr__(self):
        body = np.array2string(np.asarray(self._value), separator=", ", prefix="Array(")
        shape = f", shape={self.shape}" if self.size == 0 and self.shape != (0,) else ""
        return f"Array({body}{shape}, dtype={self.dtype.name})"  # numpy's and JAX's form

    def __str__(self):
        return str(self._value)

    def __setitem__(self, idx, value):
        raise TypeError(
            "nanofn arrays are immutable: item assignment is not supported. "
            "Use x = x.at[idx].set(value) (or .add, .mul, .min, .max) for a new array.")

    def __bool__(self):
        return bool(self._value)

    def __float__(self):
        return float(self._value)

    def __int__(self):
        return int(self._value)

    def __complex__(self):
        return complex(self._value)

    def __index__(self):
        return int(self._value.__index__())

    def __len__(self):
        if self.ndim == 0:
            raise TypeError("len() of unsized object (a 0-d array)")
        return self.shape[0]

    def __iter__(self):
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d array")
        return (self[i] for i in range(self.shape[0]))

    def __format__(self, spec):  # numpy's: a format spec applies to 0-d arrays only
        return format(self._value, spec)

    def item(self, *args):
        """The element at the flat index or index tuple `args` (the only one when none) as a
        Python scalar, as numpy's `item`."""
        return self._value.item(*args)

    def tolist(self):
        return self._value.tolist()

    def block_until_ready(self):
        return self

    def devices(self) -> set:
        """The set of devices of this array's `sharding`."""
        return set(self.sharding.device_set)

    @property
    def sharding(self):
        """How the array is laid out over devices (see `nanofn.sharding`).

        The values are always whole in this process. An array placed with a sharding
        (`device_put`, `make_array_from_*`, an eager `shard_map`'s outputs) reports that
        sharding, which describes JAX's layout; any other array, the result of an
        operation included, reports a `SingleDeviceSharding` on this process's first
        device (nanofn does not carry layouts through operations)."""
        from nanofn.sharding import _sharding_of
        return _sharding_of(self)

    def copy_to_host_async(self):
        """Accepted for compatibility: the values already live in host memory."""

    @property
    def device(self):
        """The device holding the array, or its `sharding` when that spans several
        (`jax.Array.device`)."""
        sharding = self.sharding
        return next(iter(sharding.device_set)) if sharding.num_devices == 1 else sharding

    @property
    def addressable_shards(self) -> list:
        """Each device's block of the array (`nanofn.sharding.Shard`), for this process's
        devices, as `jax.Array.addressable_shards`."""
        from nanofn.sharding import _shards
        return _shards(self, addressable=True)

    @property
    def global_shards(self) -> list:
        """Each device's block of the array, over every device of its sharding."""
        from nanofn.sharding import _shards
        return _shards(self, addressable=False)

    def addressable_data(self, index: int):
        """The block of the `index`-th addressable shard."""
        return self.addressable_shards[index].data

    def is_ready(self) -> bool:
        """Always True: nanofn computes eagerly, so a result is ready when it exists."""
        return True

    def on_device_size_in_bytes(self) -> int:
        """The bytes the values take (`nbytes`: one copy in host memory)."""
        return int(self._value.nbytes)

    def unsafe_buffer_pointer(self) -> int:
        """The address of the array's first element. Nothing may write through it: nanofn
        arrays are immutable and other arrays may share the buffer."""
        return int(self._value.ctypes.data)

    def to_device(self, device, /, *, stream=None):
        """The array placed on `device` (the array API's method; one host memory, so
        the same values)."""
        del stream  # no streams on a CPU
        from nanofn._jax_api import device_put
        return device_put(self, device)

    def __dlpack__(self, *, stream=None, max_version=None, dl_device=None, copy=None):
        # A copy, unless the consumer asks for none: consumers such as PyTorch may write
        # into what they import, which must never change a nanofn array.
        del stream  # no streams on a CPU
        extra = {} if max_version is None else {"max_version": max_version}
        if copy is False:
            if max_version is None or max_version < (1, 0):
                raise BufferError("Array.__dlpack__: sharing a nanofn array without a copy "
                                  "needs DLPack 1.0 (max_version >= (1, 0)), which marks it "
                                  "read-only")
            value = np.asarray(memoryview(np.asarray(self._value, order="C")).toreadonly())
        else:
            value = np.array(self._value, order="C", copy=True)
        return value.__dlpack__(dl_device=dl_device, copy=False, **extra)

    def __dlpack_device__(self):
        return (1, 0)  # kDLCPU, device 0

    def __array_namespace__(self, *, api_version=None):
        """The array API namespace of nanofn arrays: `nanofn.numpy`."""
        del api_version
        import nanofn.numpy
        return nanofn.numpy

    def __copy__(self):
        return self  # immutable: a copy could never differ

    def __deepcopy__(self, memo):
        return Array(np.array(self._value, copy=True))

    is_fully_replicated = property(lambda self: self.sharding.is_fully_replicated)
    is_fully_addressable = property(lambda self: True)

    __hash__ = None  # arrays are not hashable, as in JAX


def wrap(value) -> Array:
    """Wrap a numpy result as an `Array`."""
    if not isinstance(value, np.ndarray):
        value = np.asarray(value)
    if value.dtype.kind not in "biufc":  # e.g. `zeros(3, dtype=object)`
        raise TypeError(f"{caller_name()}: dtype {value.dtype} is not supported: nanofn arrays "
                        "hold bool, integer, float or complex numbers")
    return Array(value)


def to_numpy(x):
    """The numpy value of a concrete array-like (Array, ndarray, numpy or Python scalar)."""
    return x._value if type(x) is Array else x


def owned(x):
    """Take ownership of a numpy value that crosses into nanofn from the caller.

    A nanofn array never changes after it is made, so a *writable* caller buffer is copied
    (once, here); read-only buffers are kept without a copy, and so are nanofn's own arrays,
    which users only ever see read-only (`np.asarray(a)`)."""
    if isinstance(x, np.ndarray) and x.flags.writeable:
        return np.array(x, copy=True)  # also makes subclasses (np.matrix, ...) plain arrays
    return x


def _detach(out, vals):
    """`out`, copied if it is or views a writable numpy input (a caller's buffer): a view
    op (`reshape`, `transpose`, ...) on a caller's array must not see later writes to it."""
    for v in vals:
        if type(v) is np.ndarray and (out is v or (out.base is not None and
                                                   np.may_share_memory(out, v))) \
                and v.flags.writeable:
            return out.copy()
    return out


KIND_NAMES = {"O": "Python objects", "M": "datetimes", "m": "timedeltas", "U": "strings",
              "S": "bytes", "V": "raw or structured records"}


def caller_name() -> str:
    """The public nanofn function the user called, for error messages: the outermost nanofn
    frame before the user's code (a factory-made `fn` is named after its primitive)."""
    frame, name = sys._getframe(1), "nanofn"
    while frame is not None and frame.f_globals.get("__name__", "").startswith("nanofn"):
        code_name = frame.f_code.co_name
        if code_name in ("fn", "op", "f", "inner", "wrapper"):  # made by a factory
            code_name = getattr(frame.f_locals.get("prim"), "name", "_")
        if not code_name.startswith(("_", "<")):
            name = code_name
        frame = frame.f_back
    return name


def describe_value(x) -> str:
    """`x` in a few words for an error message: its type, and its dtype and shape or repr."""
    if isinstance(x, (np.ndarray, np.generic)):
        return f"a numpy {type(x).__name__} of dtype {x.dtype} and shape {np.shape(x)}"
    try:
        text = repr(x)
    except Exception:  # noqa: BLE001 - a hostile __repr__ must not hide the real error
        text = "?"
    text = text if len(text) <= 60 else text[:57] + "..."
    name = type(x).__name__
    return f"{'an' if name[:1] in 'aeiouAEIOU' else 'a'} {name} ({text})"


def check_numeric(x, what=None):
    """Return numpy value `x` if its dtype is one nanofn computes with (bool, integer, float,
    complex); else raise a TypeError naming the function (or `what`), the value and dtype."""
    kind = x.dtype.kind
    if kind not in "biufc":
        raise TypeError(
            f"{what or caller_name()}: got {describe_value(x)}; nanofn arrays hold bool, "
            f"integer, float or complex numbers, not dtype {x.dtype} "
            f"({KIND_NAMES.get(kind, 'other values')})")
    return x


# ------------------------------------------------------------------------ primitives

registry: dict[str, "Primitive"] = {}


class Primitive:
    """An operation that transformations know, with one slot for each of its rules.

    Slots, filled by `nanofn.ops` next to the primitive's definition:

    * `impl(*arrays, **params)`: compute the result on numpy arrays.
    * `abstract_eval(*avals, **params)`: the result's `ShapedArray` (a list of them for a
      primitive with `multiple_results`); raise `TypeError`/`ValueError` with a clear
      message on bad input.
    * `jvp(primals, tangents, **params) -> (primal_out, tangent_out)`, a full forward rule;
      or `jvp_terms`, a list with one entry per argument, each
      `term(t, *primals, out=out, **params)` giving that argument's contribution to the
      output tangent (None for arguments that are not differentiable).
    * `vjp`, a list with one entry per argument, each `rule(ct, *primals, out=out, **params)`
      giving the cotangent of that argument from the output cotangent `ct` (None for
      arguments that are not differentiable); or `vjp_joint(cts, primals, outs, needs,
      **params)` for primitives whose arguments share work (it returns a list, one
      cotangent or None per argument; `needs[i]` says whether argument `i` wants one).
    * `batch(vals, dims, **params) -> (out, out_dim)` for `vmap`.

    Params are keyword-only and hashable; only positional arguments can be traced.

    `numpy_rules = True` declares that the reverse-mode rules (`vjp` / `vjp_joint`) use
    nothing but primitives (through `bind`) and shape/dtype queries on their inputs, so
    the reverse pass of an eager `grad` may run them on plain numpy values (see
    `numpy_mode`). Leave it False for rules that call user code or numpy-level functions.

    Two optional slots serve only the reverse pass of an eager `grad` (`backward` in
    `nanofn/_ad.py`, with `numpy_mode` on):

    * `vjp_numpy(ct, primals, out, keys, owned, **params) -> list`: the same arithmetic as
      `vjp` / `vjp_joint`, as the same numpy ufuncs in the same order (so the numbers are
      bitwise the same), written straight on ndarrays. `keys[i] is None` means argument
      `i` wants no cotangent. `owned` says that nothing else refers to `ct` (an ndarray of
      `out`'s shape and dtype): the rule may write into it (`out=ct`). It must never
      write into `primals` or `out`.
    * `vjp_reads = (argument indices, out_read)`: the values the reverse rules read; the
      others are used for their shape and dtype only, so the tape may keep just the
      shape and dtype of a large one (its memory is then freed during the forward pass
      once the program drops it). None: every value is read.
    """

    numpy_rules = False
    vjp_numpy: Callable | None = None
    vjp_reads: tuple | None = None
    # No derivative in any argument (`defnoderiv`: stop_gradient, comparisons, ...): reverse
    # mode records nothing, so what reads the result sees a constant (as in JAX, whose
    # custom_jvp rule of a stop_gradient'ed input is never called).
    no_derivative = False

    def __init__(self, name: str, *, multiple_results: bool = False):
        if name in registry:
            raise ValueError(f"a primitive named {name!r} is already registered")
        self.name = name
        self.multiple_results = multiple_results
        self.impl: Callable | None = None
        self.abstract_eval: Callable | None = None
        self.jvp: Callable | None = None
        self.jvp_terms: list | None = None
        self.vjp: list | None = None
        self.vjp_joint: Callable | None = None
        self.batch: Callable | None = None
        registry[name] = self
        self.bind = functools.partial(bind, self)  # C-level call: no extra Python frame

    def __repr__(self):
        return self.name

    def def_impl(self, f):
        self.impl = f
        return f

    def def_abstract_eval(self, f):
        self.abstract_eval = f
        return f

    def def_effectful_abstract_eval(self, f):
        """Set the shape rule from `f(*avals, **params) -> (avals, effects)` (JAX's form).
        nanofn keeps no effect types: the effects are dropped (mark a primitive with side
        effects with `effectful = True`, so that jit keeps it)."""
        self.abstract_eval = lambda *avals, **params: f(*avals, **params)[0]
        return f

    def get_bind_params(self, params):
        """`(subfunctions, params)` to bind this primitive with: nanofn's primitives take no
        subfunctions, so `([], params)` (JAX's hook for call-like primitives)."""
        return [], params


def _impl_failed(prim: Primitive, vals, params, err: Exception):
    """Turn an error raised deep inside numpy into one that names the primitive and shapes.
    An error an impl raises on purpose for the user (marked with an attribute
    `nanofn_for_user`, as a failing `checkify.check` does) goes through unchanged."""
    if getattr(err, "nanofn_for_user", False):
        raise err
    if prim.abstract_eval is not None:
        try:
            prim.abstract_eval(*[get_aval(v) for v in vals], **params)
        except (TypeError, ValueError) as shape_err:
            raise type(shape_err)(str(shape_err)) from None
    args = ", ".join(get_aval(v).str_short() for v in vals)
    raise type(err)(f"{prim.name}({args}) failed: {err}") from err


# ------------------------------------------------------------------------ traces

class MainTrace:
    """One active transformation: its level in the stack, its trace type and its data."""

    __slots__ = ("level", "trace_type", "global_data", "alive", "trace")

    def __init__(self, level, trace_type, global_data):
        self.level = level
        self.trace_type = trace_type
        self.global_data = global_data
        self.alive = True
        self.trace = trace_type(self)

    def __repr__(self):
        return f"MainTrace({self.level}, {self.trace_type.__name__})"


class _TraceState(threading.local):
    """The transformation state of one thread (as JAX keeps its trace state per thread).

    Each thread starts with no transformation active, so `grad`, `vmap` and `jit` tracing
    in several threads at once never see each other's tracers. The attributes are class
    defaults that a thread shadows on first assignment; the lists are made per thread."""

    dynamic_trace: MainTrace | None = None  # set while staging out a jaxpr (jit, make_jaxpr)
    numpy_mode = False  # see `bind`: the eager backward pass computes on numpy values
    nan_context: str | None = None  # set by the backward pass: which forward op it differentiates
    rule_trace = None  # the BatchTrace whose batching rule is running (see `batch_flat`)

    def __init__(self):
        self.trace_stack: list[MainTrace] = []  # active transformations, innermost last
        self.axis_env: list = []  # bound named axes (`nanofn/_named_axes.py`)


_state = _TraceState()

# How many sections, in all threads together, may have `numpy_mode` on or a dynamic trace
# set (an eager backward pass on numpy values, a jaxpr being staged out). While it is 0,
# `bind` knows both are off without reading the thread-local state, which costs more than
# a plain global read on every eager op. It may overcount (then `bind` just reads the
# thread-local state), never undercount: each such section enters before it changes the
# state and leaves after it has put the state back.
_special_sections = 0
_special_lock = threading.Lock()


class special_section:  # noqa: N801 - a context manager, used like a function
    """Bracket code that turns `numpy_mode` on or sets a dynamic trace in this thread."""

    __slots__ = ()

    def __enter__(self):
        global _special_sections
        with _special_lock:
            _special_sections += 1
        return self

    def __exit__(self, *exc_info):
        global _special_sections
        with _special_lock:
            _special_sections -= 1
        return False


class new_main:
    """`with new_main(TraceType, global_data) as main:` pushes a new transformation onto
    the stack for the duration of the block (a class, not a generator: it runs once per
    transformation call, so eager `grad` pays for it on every call)."""

    __slots__ = ("trace_type", "global_data", "main", "prev_mode")

    def __init__(self, trace_type, global_data=None):
        self.trace_type = trace_type
        self.global_data = global_data

    def __enter__(self) -> MainTrace:
        state = _state
        stack = state.trace_stack
        main = self.main = MainTrace(len(stack) + 1, self.trace_type, self.global_data)
        stack.append(main)
        self.prev_mode, state.numpy_mode = state.numpy_mode, False
        return main

    def __exit__(self, *exc_info):
        state = _state
        state.numpy_mode = self.prev_mode
        state.trace_stack.pop()
        main = self.main
        main.alive = False
        main.trace = None  # break the main <-> trace cycle so the tape is freed right away
        return False


@contextlib.contextmanager
def new_dynamic(main: MainTrace):
    """Make `main` catch every bind, even of constants (used to stage out whole programs)."""
    state = _state
    with special_section():
        prev, state.dynamic_trace = state.dynamic_trace, main
        prev_mode, state.numpy_mode = state.numpy_mode, False
        try:
            yield
        finally:
            state.numpy_mode = prev_mode
            state.dynamic_trace = prev


@contextlib.contextmanager
def compile_time_eval():
    """Inside the block, primitives applied to concrete values run at once, even while a
    jaxpr is being staged (`jax.ensure_compile_time_eval`); traced values still trace."""
    state = _state
    prev, state.dynamic_trace = state.dynamic_trace, None
    try:
        yield
    finally:
        state.dynamic_trace = prev


def under_transform() -> bool:
    """True while any transformation is active in this thread (eager dispatch is off)."""
    return bool(_state.trace_stack)


class Trace:
    """Interprets primitives for one transformation. Subclasses define three methods.

    `bind` hands `process_primitive` this trace's tracers, raising every other argument
    with `full_raise` first; a subclass that sets `takes_raw_args = True` gets the
    arguments as they were passed instead (a sequence: its tracers, constants, and
    tracers of lower-level transformations) and treats all but its own as constants."""

    __slots__ = ("main",)
    takes_raw_args = False

    def __init__(self, main: MainTrace):
        self.main = main

    def pure(self, val):
        """Wrap a value that is constant with respect to this transformation."""
        raise NotImplementedError

    lift = pure  # wrap a tracer of an enclosing (lower-level) transformation

    def process_primitive(self, prim, tracers, params):
        raise NotImplementedError

    def full_raise(self, val):
        if not isinstance(val, Tracer):
            return self.pure(val)
        main = val._trace.main
        if main is self.main:
            return val
        if not main.alive:
            raise_leaked(val)
        if main.level < self.main.level:
            return self.lift(val)
        raise UnexpectedTracerError(
            f"a tracer of {main} reached the lower-level {self.main}: a traced value escaped "
            "the transformation that made it")


def raise_leaked(tracer):
    raise UnexpectedTracerError(
        f"Encountered a leaked tracer with abstract value {tracer.aval.str_short()}: it was "
        f"created inside a transformation ({tracer._trace.main.trace_type.__name__}) that has "
        "already finished, typically because a traced value was stored outside the function "
        "(in a global, a closure or an attribute) and used later. Return the value from the "
        "function instead of storing it.")


class Tracer:
    """A value followed by a transformation. Subclasses add what the transform tracks."""

    __slots__ = ("_trace",)
    __array_priority__ = 100

    @property
    def aval(self) -> ShapedArray:
        raise NotImplementedError

    shape = property(lambda self: self.aval.shape)
    dtype = property(lambda self: self.aval.dtype)
    ndim = property(lambda self: len(self.shape))
    size = property(lambda self: int(np.prod(self.shape, dtype=np.int64)))

    def concrete_value(self):
        """The concrete numbers behind this tracer, or `ConcretizationError` if there are none."""
        raise ConcretizationError(_concretization_message(self))

    def __bool__(self):
        try:
            return bool(_lowest(self))
        except ConcretizationError as e:
            _raise_as(e, TracerBoolConversionError)

    def __float__(self):
        return float(_lowest(self))

    def __int__(self):
        try:
            return int(_lowest(self))
        except ConcretizationError as e:
            _raise_as(e, TracerIntegerConversionError)

    def __complex__(self):
        return complex(_lowest(self))

    def __index__(self):
        if not np.issubdtype(self.dtype, np.integer):
            raise TypeError(f"only integer arrays can be used as an index, got {self.aval.str_short()}")
        try:
            return int(_lowest(self))
        except ConcretizationError as e:
            _raise_as(e, TracerIntegerConversionError)

    def item(self, *args):
        return _lowest(self).item(*args)

    def tolist(self):
        return np.asarray(_lowest(self)).tolist()

    def __array__(self, dtype=None, copy=None):
        raise TracerArrayConversionError(
            f"A traced value ({self.aval.str_short()}) was converted to a numpy array. Inside "
            "functions that nanofn transforms, use nanofn.numpy (import nanofn.numpy as fnp) "
            "instead of numpy, so the operation can be traced.")

    def __setitem__(self, idx, value):
        raise TypeError(
            "nanofn arrays are immutable: item assignment is not supported. "
            "Use x = x.at[idx].set(value) (or .add, .mul, .min, .max) for a new array.")

    def __len__(self):
        if not self.shape:
            raise TypeError("len() of unsized object (a 0-d array)")
        return self.shape[0]

    def __iter__(self):
        if not self.shape:
            raise TypeError("iteration over a 0-d array")
        return (self[i] for i in range(self.shape[0]))

    def __repr__(self):
        return f"Traced<{self.aval.str_short()}>with<{type(self._trace).__name__}>"

    __hash__ = None


def _raise_as(err, kind):
    """Re-raise a plain ConcretizationError as its more specific JAX kind (same message);
    a subclass with its own meaning (from vmap, say) goes up unchanged."""
    if type(err) is ConcretizationError:
        raise kind(*err.args) from None
    raise err


def _lowest(x):
    """Follow a tracer down to its concrete value (numpy), through every transformation."""
    while isinstance(x, Tracer):
        if not x._trace.main.alive:
            raise_leaked(x)
        x = x.concrete_value()
    return to_numpy(x)


def _concretization_message(tracer) -> str:
    where = ""
    describe = getattr(tracer._trace, "describe_dependence", None)
    if describe is not None:
        where = describe(tracer)
    return (
        f"Abstract tracer value encountered where a concrete value is expected: "
        f"{tracer.aval.str_short()}{where}. The value depends on a traced argument of a "
        "function under jit (or make_jaxpr), so Python control flow (if, while, bool(), "
        "int(), float()) cannot use it. Mark the argument static with "
        "jit(f, static_argnums=...) / static_argnames=..., use nanofn.lax.cond / "
        "nanofn.lax.while_loop for control flow, or nanofn.numpy.where to select values.")


# ------------------------------------------------------------------------ debug_nans

# On while `jax_debug_nans` or `jax_debug_infs` is (a plain global, read per op): every
# primitive's result then goes through `check_nans`, which looks for what `checking` says.
debug_nans = False
checking = (False, False)  # (NaNs, infinities): mirrored from the two flags by the config
# The values of the flags that change what a trace records (x64, rank and dtype
# promotion), kept by the config: a jit cache key that holds it retraces when they change.
trace_flags = (False, "allow", "standard")


def user_frame() -> str:
    """`file:line (function)` of the innermost stack frame outside nanofn itself."""
    import os
    import sys
    pkg = os.path.dirname(os.path.abspath(__file__))
    frame = sys._getframe(1)
    while frame is not None:
        fname = os.path.abspath(frame.f_code.co_filename)
        if not fname.startswith(pkg + os.sep) and "contextlib" not in fname:
            return f"{frame.f_code.co_filename}:{frame.f_lineno} ({frame.f_code.co_name})"
        frame = frame.f_back
    return "<unknown>"


def check_nans(prim: Primitive, out):
    """Raise FloatingPointError if a primitive's result holds a NaN (with debug_nans on) or
    an infinity (with debug_infs on), naming the primitive and where it ran."""
    nans, infs = checking
    for o in (out if prim.multiple_results else [out]):
        o = to_numpy(o)
        if not isinstance(o, (np.ndarray, np.generic)) or o.dtype.kind not in "fc":
            continue
        if nans and np.isnan(o).any():
            where = _state.nan_context or f"at {user_frame()}"
            raise FloatingPointError(f"debug_nans: primitive '{prim.name}' produced a NaN {where}")
        if infs and np.isinf(o).any():
            where = _state.nan_context or f"at {user_frame()}"
            raise FloatingPointError(
                f"debug_infs: primitive '{prim.name}' produced an infinity {where}")


# While the reverse pass of an eager `grad` runs (no transformation active, concrete
# cotangents), `nanofn._ad.backward` turns this on around rules that are written only with
# primitives: `bind` then computes on numpy values and returns numpy values, with no `Array`
# wrapping and no trace lookup. Starting any transformation turns it off (`new_main`).
# The flag lives in `_state` (per thread).


def bind(prim: Primitive, *args, **params):
    """Apply `prim` to `args`: run it (eager), or hand it to the innermost transformation."""
    if _special_sections:  # some thread may be in numpy mode or staging: look at this one
        state = _state
        numpy_mode = state.numpy_mode
        top = state.dynamic_trace
    else:
        numpy_mode = False
        top = None
    if not numpy_mode:
        for x in args:
            if isinstance(x, Tracer):
                main = x._trace.main
                if top is None or main.level > top.level:
                    top = main
        if top is not None:
            if not top.alive:
                raise_leaked(next(x for x in args
                                  if isinstance(x, Tracer) and x._trace.main is top))
            trace = top.trace
            for x in args:
                if type(x) is np.ndarray:  # a transformation may keep its inputs (a vjp's
                    args = [owned(x) for x in args]  # residuals): caller buffers are copied
                    break
            if trace.takes_raw_args:
                return trace.process_primitive(prim, args, params)
            return trace.process_primitive(
                prim, [x if isinstance(x, Tracer) and x._trace.main is top else trace.full_raise(x)
                       for x in args], params)
    # eager: run the impl on numpy values, without numpy's floating-point warnings (an
    # inf or nan is a value, as in JAX, which never warns about them)
    vals = args
    for x in args:
        if type(x) is Array:
            vals = [x._value if type(x) is Array else x for x in args]
            break
    token = quiet_enter()
    try:
        out = prim.impl(*vals, **params)
    except Exception as err:  # noqa: BLE001 - re-raised with the primitive's name
        _impl_failed(prim, vals, params, err)
    finally:
        quiet_leave(token)
    if debug_nans:
        check_nans(prim, out)
    if prim.multiple_results:
        out = [o if isinstance(o, np.ndarray) else np.asarray(o) for o in out]
        return out if numpy_mode else [Array(_detach(o, vals)) for o in out]
    if type(out) is not np.ndarray:
        out = out if isinstance(out, np.ndarray) else np.asarray(out)
    if numpy_mode:
        return out
    if out.base is None:  # a fresh result (the common case) is nobody else's buffer ...
        for v in vals:
            if v is out:  # ... unless it is an input passed through
                return Array(_detach(out, vals))
        return Array(out)
    return Array(_detach(out, vals))


# ------------------------------------------------------------------------ the jaxpr IR


class Var:
    """A variable of a jaxpr: a name given at print time, and an abstract value."""

    __slots__ = ("aval",)

    def __init__(self, aval: ShapedArray):
        self.aval = aval


class Literal:
    """A constant written inline in a jaxpr (scalars only)."""

    __slots__ = ("val", "aval")

    def __init__(self, val):
        self.val = val
        self.aval = get_aval(val)


class Eqn:
    """One equation: `outvars = primitive[params] invars`."""

    __slots__ = ("primitive", "invars", "params", "outvars")

    def __init__(self, primitive, invars, params, outvars):
        self.primitive = primitive
        self.invars = invars
        self.params = params
        self.outvars = outvars


class Jaxpr:
    """A typed program: `{ lambda constvars ; invars . let eqns in outvars }`."""

    __slots__ = ("constvars", "invars", "eqns", "outvars")

    def __init__(self, constvars, invars, eqns, outvars):
        self.constvars = list(constvars)
        self.invars = list(invars)
        self.eqns = list(eqns)
        self.outvars = list(outvars)

    in_avals = property(lambda self: [v.aval for v in self.invars])
    out_avals = property(lambda self: [v.aval for v in self.outvars])

    def __str__(self):
        return pp_jaxpr(self)

    __repr__ = __str__


class ClosedJaxpr:
    """A jaxpr together with the values of its constant variables."""

    __slots__ = ("jaxpr", "consts")

    def __init__(self, jaxpr: Jaxpr, consts):
        self.jaxpr = jaxpr
        self.consts = list(consts)

    in_avals = property(lambda self: self.jaxpr.in_avals)
    out_avals = property(lambda self: self.jaxpr.out_avals)
    eqns = property(lambda self: self.jaxpr.eqns)
    literals = property(lambda self: self.consts)  # JAX's other name for the constants
    effects = property(lambda self: frozenset())  # nanofn's primitives have no effects

    def __call__(self, *args):
        return eval_jaxpr(self.jaxpr, self.consts, *args)

    def __str__(self):
        return pp_jaxpr(self.jaxpr)

    __repr__ = __str__


def _var_names():
    for n in itertools.count():
        name = ""
        while True:
            name = chr(ord("a") + n % 26) + name
            n = n // 26 - 1
            if n < 0:
                break
        yield name


def _pp_param(v):
    if isinstance(v, (Jaxpr, ClosedJaxpr)):
        return "{ ... }"
    if isinstance(v, np.dtype) or isinstance(v, type):
        return np.dtype(v).name
    if isinstance(v, tuple):
        return "(" + ",".join(_pp_param(e) for e in v) + ("," if len(v) == 1 else "") + ")"
    return repr(v) if isinstance(v, str) else str(v)


def pp_jaxpr(jaxpr: Jaxpr, indent: int = 0) -> str:
    """Print a jaxpr the way JAX does, with variables named a, b, c, ..."""
    names: dict[int, str] = {}
    fresh = _var_names()

    def binder(v):
        names[id(v)] = next(fresh)
        return f"{names[id(v)]}:{v.aval.str_short()}"

    def atom(x):
        if isinstance(x, Literal):
            v = x.val
            return str(v.item() if hasattr(v, "item") else v)
        return names.get(id(x), "?")

    pad = " " * indent
    head = " ".join(binder(v) for v in jaxpr.constvars)
    args = " ".join(binder(v) for v in jaxpr.invars)
    lines = []
    for eqn in jaxpr.eqns:
        ins = " ".join(atom(x) for x in eqn.invars)
        outs = " ".join(binder(v) for v in eqn.outvars)
        params = ", ".join(f"{k}={_pp_param(v)}" for k, v in sorted(eqn.params.items())
                           if v is not None)
        params = f"[{params}]" if params else ""
        lines.append(f"{pad}    {outs} = {eqn.primitive.name}{params} {ins}".rstrip())
    outs = " ".join(atom(v) for v in jaxpr.outvars)
    body = "\n".join(lines)
    sep = f"\n{body}\n{pad}  in" if lines else " in"
    return f"{{ lambda {head + ' ' if head else ''}; {args}. let{sep} ({outs}) }}"


def typecheck_jaxpr(jaxpr: Jaxpr) -> None:
    """Check that every equation's inputs are defined and its outputs have the types its
    primitive's shape rule gives. Turns transformation bugs into type errors."""
    env: set[int] = set()
    for v in itertools.chain(jaxpr.constvars, jaxpr.invars):
        if id(v) in env:
            raise TypeError("jaxpr binds a variable twice")
        env.add(id(v))
    for eqn in jaxpr.eqns:
        for x in eqn.invars:
            if isinstance(x, Var) and id(x) not in env:
                raise TypeError(f"jaxpr uses an unbound variable in {eqn.primitive.name}")
        out = eqn.primitive.abstract_eval(*[x.aval for x in eqn.invars], **eqn.params)
        out = out if eqn.primitive.multiple_results else [out]
        got = [v.aval for v in eqn.outvars]
        if list(out) != got:
            raise TypeError(f"{eqn.primitive.name}: shape rule gives {[str(a) for a in out]}, "
                            f"jaxpr says {[str(a) for a in got]}")
        for v in eqn.outvars:
            env.add(id(v))
    for x in jaxpr.outvars:
        if isinstance(x, Var) and id(x) not in env:
            raise TypeError("jaxpr returns an unbound variable")


def has_effects(eqn: Eqn) -> bool:
    """Whether an equation has side effects (jit must not fold, dedupe or drop it).
    A primitive's `effectful` is a bool, or a function of the params (control flow is
    effectful only when a body it holds is)."""
    eff = getattr(eqn.primitive, "effectful", False)
    return eff(eqn.params) if callable(eff) else bool(eff)


def jaxpr_has_effects(jaxpr: Jaxpr) -> bool:
    return any(has_effects(e) for e in jaxpr.eqns)


def dce_jaxpr(jaxpr: Jaxpr) -> Jaxpr:
    """Drop the equations whose results are never used (keeping those with effects)."""
    live = {id(x) for x in jaxpr.outvars if type(x) is Var}
    kept = []
    for eqn in reversed(jaxpr.eqns):
        if has_effects(eqn) or any(id(v) in live for v in eqn.outvars):
            kept.append(eqn)
            live.update(id(x) for x in eqn.invars if type(x) is Var)
    kept.reverse()
    return Jaxpr(jaxpr.constvars, jaxpr.invars, kept, jaxpr.outvars)


def eval_jaxpr(jaxpr: Jaxpr, consts, *args):
    """Run a jaxpr on `consts` and `args`, binding each equation (so this is traceable)."""
    env: dict[int, Any] = {}
    for v, x in zip(jaxpr.constvars, consts):
        env[id(v)] = x
    if len(args) != len(jaxpr.invars):
        raise TypeError(f"jaxpr takes {len(jaxpr.invars)} arguments, got {len(args)}")
    for v, x in zip(jaxpr.invars, args):
        env[id(v)] = x

    def read(x):
        return x.val if type(x) is Literal else env[id(x)]

    for eqn in jaxpr.eqns:
        # prim.bind, not bind(prim): a primitive may have its own (collectives do)
        outs = eqn.primitive.bind(*[read(x) for x in eqn.invars], **eqn.params)
        if eqn.primitive.multiple_results:
            for v, o in zip(eqn.outvars, outs):
                env[id(v)] = o
        else:
            env[id(eqn.outvars[0])] = outs
    return [read(x) for x in jaxpr.outvars]


# ------------------------------------------------------------------------ staging: JaxprTrace


class JaxprTracer(Tracer):
    """A value being staged into a jaxpr: only its abstract value is known."""

    __slots__ = ("_aval",)

    def __init__(self, trace, aval):
        self._trace = trace
        self._aval = aval

    aval = property(operator.attrgetter("_aval"))
    shape = property(operator.attrgetter("_aval.shape"))
    dtype = property(operator.attrgetter("_aval.dtype"))


class JaxprBuilder:
    """What a JaxprTrace records: equations, constants and the tracer-to-variable map."""

    def __init__(self, arg_names=None):
        self.eqns: list[Eqn] = []
        self.vars: dict[int, Var] = {}
        self.tracers: list[JaxprTracer] = []  # keep tracers alive so ids stay unique
        self.const_tracers: dict[int, JaxprTracer] = {}
        self.consts: dict[int, Any] = {}  # var id -> value
        self.producer: dict[int, Eqn] = {}  # var id -> eqn that made it
        self.arg_vars: list[Var] = []
        self.arg_names = arg_names  # callable giving a name per flat argument, for errors

    def new_tracer(self, trace, aval) -> JaxprTracer:
        t = JaxprTracer(trace, aval)
        self.tracers.append(t)
        self.vars[id(t)] = Var(aval)
        return t

    def getvar(self, tracer) -> Var:
        return self.vars[id(tracer)]

    def add_const(self, trace, val) -> JaxprTracer:
        key = id(val)
        t = self.const_tracers.get(key)
        if t is None:
            t = self.new_tracer(trace, get_aval(val))
            self.const_tracers[key] = t
            # keep val alive with its id; a writable numpy constant (a caller's array closed
            # over by a jitted function) is copied, so later writes to it change nothing; a
            # Python scalar takes its aval's dtype (a returned 2.0 is float32, as in JAX)
            value = scalar_value(val) if type(val) in _PY_SCALAR_DTYPE else owned(val)
            self.consts[id(self.vars[id(t)])] = (value, val)
        return t

    def build(self, in_tracers, out_tracers, inline_scalars=True) -> ClosedJaxpr:
        constvars, constvals = [], []
        invars = [self.getvar(t) for t in in_tracers]
        for t in self.const_tracers.values():
            v = self.getvar(t)
            constvars.append(v)
            constvals.append(self.consts[id(v)][0])
        jaxpr = Jaxpr(constvars, invars, self.eqns, [self.getvar(t) for t in out_tracers])
        if inline_scalars:
            jaxpr, constvals = _inline_literals(jaxpr, constvals)
        return ClosedJaxpr(jaxpr, constvals)


def _inline_literals(jaxpr: Jaxpr, consts):
    """Write scalar constants inline as literals, keeping array constants as constvars."""
    lits, constvars, constvals = {}, [], []
    for v, c in zip(jaxpr.constvars, consts):
        if np.ndim(c) == 0 and not isinstance(c, Tracer):
            lits[id(v)] = Literal(to_numpy(c))
        else:
            constvars.append(v)
            constvals.append(c)
    if not lits:
        return jaxpr, consts
    eqns = [Eqn(e.primitive, [lits.get(id(x), x) if type(x) is Var else x for x in e.invars],
                e.params, e.outvars) for e in jaxpr.eqns]
    outs = [lits.get(id(x), x) for x in jaxpr.outvars]
    return Jaxpr(constvars, jaxpr.invars, eqns, outs), constvals


class JaxprTrace(Trace):
    """Stages every primitive into a jaxpr instead of running it."""

    __slots__ = ()

    def pure(self, val):
        return self.main.global_data.add_const(self, val)

    lift = pure

    def new_arg(self, aval) -> JaxprTracer:
        builder = self.main.global_data
        t = builder.new_tracer(self, aval)
        builder.arg_vars.append(builder.getvar(t))
        return t

    def process_primitive(self, prim, tracers, params):
        builder = self.main.global_data
        avals_in = [t.aval for t in tracers]
        out_avals = prim.abstract_eval(*avals_in, **params)
        multiple = prim.multiple_results
        outs = [builder.new_tracer(self, a) for a in (out_avals if multiple else [out_avals])]
        eqn = Eqn(prim, [builder.getvar(t) for t in tracers], params,
                  [builder.getvar(t) for t in outs])
        builder.eqns.append(eqn)
        for v in eqn.outvars:
            builder.producer[id(v)] = eqn
        return outs if multiple else outs[0]

    def describe_dependence(self, tracer) -> str:
        """Name the function arguments a staged value depends on, for error messages."""
        builder = self.main.global_data
        seen, stack, args = set(), [builder.getvar(tracer)], []
        arg_index = {id(v): i for i, v in enumerate(builder.arg_vars)}
        while stack:
            v = stack.pop()
            if id(v) in seen:
                continue
            seen.add(id(v))
            if id(v) in arg_index:
                args.append(arg_index[id(v)])
            eqn = builder.producer.get(id(v))
            if eqn is not None:
                stack.extend(x for x in eqn.invars if type(x) is Var)
        if not args or builder.arg_names is None:
            return ""
        names = builder.arg_names()
        named = sorted({names[i] for i in args if i < len(names)})
        return " (it depends on the traced argument" + ("s " if len(named) > 1 else " ") + \
            ", ".join(named) + ")"


def trace_to_jaxpr(fun_flat: Callable, in_avals, arg_names=None,
                   inline_scalars: bool = True) -> ClosedJaxpr:
    """Trace `fun_flat` (a function of a flat list of arrays returning a flat list of
    arrays) with abstract inputs, and return the program it runs. Scalar constants are
    written inline as literals unless `inline_scalars` is False (then every constant is
    a constvar, as `closure_convert` needs)."""
    builder = JaxprBuilder(arg_names)
    with new_main(JaxprTrace, builder) as main:
        with new_dynamic(main):
            trace = main.trace
            in_tracers = [trace.new_arg(a) for a in in_avals]
            outs = fun_flat(*in_tracers)
            out_tracers = [trace.full_raise(o) for o in outs]
    return builder.build(in_tracers, out_tracers, inline_scalars)
