"""Typed PRNG keys: what `nanofn.random.key(seed)` returns, as `jax.random.key` does.

JAX has two kinds of key. `PRNGKey(seed)` is a *raw* key: a `uint32` array of shape `(2,)`,
and a batch of them has shape `(..., 2)`. `key(seed)` is a *typed* key: a scalar of the key
dtype `key<fry>`, and a batch of them has the batch's shape, `(...)`. Both hold the same two
words, and every sampler accepts both.

`PRNGKeyArray` is the typed kind. It wraps the raw words (`key_data(keys)`, shape
`(*shape, 2)`) and shows the array of keys they make: `shape` leaves out the last axis, and
indexing, `reshape`, `transpose` and iteration act on the key axes only. Arithmetic is not
defined on keys (a TypeError, as in JAX); `key_data` gives the words when they are needed.

A typed key is a pytree node whose one child is its raw words, so `jit`, `vmap`, `scan`,
`cond` and the tree functions carry it through as those words and rebuild it on the other
side: `vmap` over a batch of keys maps over the leading axes of the words. Where JAX, whose
keys are arrays of their own dtype, differs:

- `jax.tree.leaves(key)` is `[key_data(key)]` (JAX: `[key]`), and a function given to
  `tree.map` sees the words: what it returns comes back as keys only when it still is
  uint32 words (`tree.map(lambda x: x.shape, keys)` gives the words' shape);
- `make_jaxpr` shows a key argument as its words (`u32[2]`, JAX: `key<fry>[]`);
- a negative `in_axes`/`out_axes` given for keys counts from the words' last axis;
- a key's gradient (`grad(..., allow_int=True)`, `vjp`) is float0 of the keys' shape, as
  in JAX.

Example:
    >>> import nanofn
    >>> k = nanofn.random.key(0)
    >>> k.shape, str(k.dtype)
    ((), 'key<fry>')
    >>> nanofn.random.split(k, 3).shape
    (3,)
"""

from __future__ import annotations

import functools
import operator

import numpy as np

from nanofn import _core as core
from nanofn._tree import register_pytree_node

__all__ = ["KeyDType", "PRNGKeyArray", "key_dtype_fry", "is_typed_key"]


class KeyDType:
    """The dtype of typed keys: `key<fry>` (the threefry2x32 generator's keys).

    `nanofn.dtypes.issubdtype(key_dtype, nanofn.dtypes.prng_key)` is True.

    Example:
        >>> import nanofn
        >>> d = nanofn.random.key(0).dtype
        >>> str(d), d.name, d == nanofn.random.split(nanofn.random.key(1)).dtype
        ('key<fry>', 'key<fry>', True)
    """

    __slots__ = ("impl",)

    def __init__(self, impl="fry"):
        self.impl = impl

    @property
    def name(self) -> str:
        return f"key<{self.impl}>"

    @property
    def itemsize(self) -> int:
        return 8  # two uint32 words

    @property
    def _impl(self):  # JAX's attribute naming the generator
        return self.impl

    @property
    def type(self):
        from nanofn.dtypes import prng_key
        return prng_key

    def __repr__(self):
        return self.name

    __str__ = __repr__

    def __eq__(self, other):
        return isinstance(other, KeyDType) and other.impl == self.impl

    def __hash__(self):
        return hash(("KeyDType", self.impl))


key_dtype_fry = KeyDType()


def _words_shape(data):
    return tuple(data.shape)  # an Array, a tracer, or a ShapeDtypeStruct (eval_shape)


class PRNGKeyArray:
    """An array of typed PRNG keys over its raw `uint32` words (last axis of size 2).

    Made by `nanofn.random.key`, `split` and `fold_in` of a typed key, and
    `wrap_key_data`; not meant to be constructed directly.

    Example:
        >>> import nanofn
        >>> keys = nanofn.random.split(nanofn.random.key(0), 6).reshape(2, 3)
        >>> keys.shape, keys[1, 2].shape, nanofn.random.key_data(keys).shape
        ((2, 3), (), (2, 3, 2))
    """

    __slots__ = ("_base",)
    __array_priority__ = 1000  # `numpy_array == keys` asks the keys

    def __init__(self, data):
        self._base = data

    # ------------------------------------------------------------------ what it is

    @property
    def shape(self) -> tuple:
        return _words_shape(self._base)[:-1]

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def dtype(self) -> KeyDType:
        return key_dtype_fry

    @property
    def itemsize(self) -> int:
        return 8  # two uint32 words

    def __len__(self):
        if not self.shape:
            raise TypeError("len() of an unsized key array (a single key)")
        return self.shape[0]

    def __repr__(self):
        words = self._base
        if isinstance(words, core.Tracer):
            return f"PRNGKeyArray(shape={self.shape}, dtype={self.dtype}) over {words!r}"
        body = np.array2string(np.asarray(core.to_numpy(words)), separator=" ")
        return f"Array({self.shape}, dtype={self.dtype}) overlaying:\n{body}"

    __str__ = __repr__

    def __bool__(self):
        raise TypeError("The truth value of a PRNG key is not defined; compare key_data(keys)")

    def __array__(self, dtype=None, copy=None):
        raise TypeError("A typed PRNG key array cannot be converted to a numpy array; use "
                        "nanofn.random.key_data(keys) for its uint32 words")

    __hash__ = None

    @property
    def nbytes(self) -> int:
        return self.size * self.itemsize

    def devices(self):
        return self._base.devices() if hasattr(self._base, "devices") else set()

    def take(self, indices, axis=None, **kwargs):
        from nanofn import numpy as fnp
        return fnp.take(self, indices, axis=axis, **kwargs)

    def block_until_ready(self):
        return self

    def copy(self):
        return PRNGKeyArray(self._base)

    # ------------------------------------------------------------------ comparing

    def __eq__(self, other):
        return keys_equal(self, other)

    def __ne__(self, other):
        return keys_equal(self, other, negate=True)

    # ------------------------------------------------------------------ the key axes

    def __getitem__(self, idx):
        idx = idx if isinstance(idx, tuple) else (idx,)
        # The words' axis is not the keys' to index: count the axes the index consumes.
        used = sum(len(i.shape) if getattr(i, "dtype", None) == np.bool_ else 1
                   for i in idx if i is not None and i is not Ellipsis)
        if used > self.ndim:
            raise IndexError(f"Too many indices for a key array: it has {self.ndim} "
                             f"dimension(s), but {used} were indexed")
        if any(i is Ellipsis for i in idx if not hasattr(i, "shape")):
            idx = idx + (slice(None),)  # the ellipsis stops before the words' axis
        else:
            idx = idx + (Ellipsis,)
        return PRNGKeyArray(self._base[idx])

    def __iter__(self):
        if not self.shape:
            raise TypeError("iteration over a single PRNG key")
        return (self[i] for i in range(self.shape[0]))

    def reshape(self, *shape, order="C"):
        if order != "C":
            raise ValueError(f"reshape of PRNG keys: order must be 'C', got {order!r}")
        if len(shape) == 1 and not isinstance(shape[0], (int, np.integer)):
            shape = tuple(shape[0])
        shape = tuple(operator.index(d) for d in shape)
        return PRNGKeyArray(self._base.reshape(shape + (2,)))

    def ravel(self, order="C"):
        return self.reshape(-1, order=order)

    flatten = ravel

    def transpose(self, *axes):
        n = self.ndim
        if len(axes) == 1 and axes[0] is not None and not isinstance(axes[0], (int, np.integer)):
            axes = tuple(axes[0])
        axes = tuple(range(n))[::-1] if not axes or axes == (None,) else \
            tuple(operator.index(a) % n for a in axes)
        return PRNGKeyArray(self._base.transpose(axes + (n,)))

    @property
    def T(self):  # noqa: N802 - numpy's name
        return self.transpose()

    def swapaxes(self, a, b):
        axes = list(range(self.ndim))
        a, b = operator.index(a) % self.ndim, operator.index(b) % self.ndim
        axes[a], axes[b] = axes[b], axes[a]
        return self.transpose(axes)

    def squeeze(self, axis=None):
        shape = self.shape
        if axis is None:
            drop = {i for i, d in enumerate(shape) if d == 1}
        else:
            axis = axis if isinstance(axis, tuple) else (axis,)
            drop = {operator.index(a) % len(shape) for a in axis}
            if any(shape[a] != 1 for a in drop):
                raise ValueError(f"squeeze of PRNG keys: axis {axis} of shape {shape} has a "
                                 "size other than 1")
        return self.reshape(tuple(d for i, d in enumerate(shape) if i not in drop))


def _is_key(x) -> bool:
    return type(x) is PRNGKeyArray


def has_keys(args, kwargs=None) -> bool:
    """Whether a typed key array is among `args` (or in a list or tuple among them) or the
    values of `kwargs`: a quick test for the array functions that take keys."""
    for a in args:
        if type(a) is PRNGKeyArray or (type(a) in (list, tuple)
                                       and any(type(x) is PRNGKeyArray for x in a)):
            return True
    return bool(kwargs) and any(type(v) is PRNGKeyArray for v in kwargs.values())


def on_key_words(fun, *args, **kwargs):
    """`fun(*args, **kwargs)` for an array function that only moves, selects or copies
    elements (stack, reshape, where, take, ...), with typed keys among its arguments.

    `fun` runs under `vmap` over the words' axis of every key argument (the last axis of
    `key_data`), so it sees arrays of the keys' own shape, axes and indices mean what
    they mean for the keys, and each array it returns gets the words' axis back and
    becomes typed keys again.

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> from nanofn._keys import on_key_words
        >>> k = nanofn.random.key(0)
        >>> on_key_words(fnp.stack, [k, k], axis=0).shape
        (2,)
    """
    from nanofn._batching import vmap
    from nanofn._tree import tree_flatten, tree_unflatten
    leaves, tree = tree_flatten((args, kwargs), is_leaf=_is_key)
    keyed = [_is_key(x) for x in leaves]
    values = [x._base if k else x for x, k in zip(leaves, keyed)]

    def on_words(*words):
        it = iter(words)
        full = [next(it) if k else x for x, k in zip(values, keyed)]
        a, kw = tree_unflatten(tree, full)
        return fun(*a, **kw)

    out = vmap(on_words, in_axes=-1, out_axes=-1)(*[v for v, k in zip(values, keyed) if k])
    out_leaves, out_tree = tree_flatten(out)
    return tree_unflatten(out_tree, [PRNGKeyArray(w) for w in out_leaves])


def keys_equal(a, b, negate=False):
    """`a == b` (or `a != b`) for key arrays: per key, whether both words agree.

    Keys compare only with keys (JAX refuses `key == 0` and `key == raw_words` with a
    TypeError), and the key shapes broadcast as arrays do.

    Example:
        >>> import nanofn
        >>> from nanofn._keys import keys_equal
        >>> ks = nanofn.random.split(nanofn.random.key(0), 3)
        >>> keys_equal(ks, ks[1]).tolist()
        [False, True, False]
    """
    if not (_is_key(a) and _is_key(b)):
        other = b if _is_key(a) else a
        dtype = getattr(other, "dtype", None)
        what = f"dtype {dtype}" if dtype is not None else f"a {type(other).__name__}"
        raise TypeError(f"{'not_equal' if negate else 'equal'} does not accept a key array "
                        f"and {what}: keys compare only with keys")
    from nanofn import numpy as fnp
    if negate:
        return fnp.any(a._base != b._base, axis=-1)
    return fnp.all(a._base == b._base, axis=-1)


def _keys_isin(element, test_elements, assume_unique=False, invert=False, **kwargs):
    if not (_is_key(element) and _is_key(test_elements)):
        raise TypeError("isin: keys are only found among keys")
    tests = test_elements._base.reshape(-1, 2)
    hit = (element._base[..., None, :] == tests).all(axis=-1).any(axis=-1)
    return ~hit if invert else hit


def _keys_array_equal(a1, a2, equal_nan=False):
    from nanofn import numpy as fnp
    if not (_is_key(a1) and _is_key(a2)) or a1.shape != a2.shape:
        return fnp.asarray(False)
    return fnp.all(keys_equal(a1, a2))


# Functions of keys that compare whole keys rather than move them: what each runs instead.
_KEY_SPECIAL = {
    "equal": keys_equal, "eq": keys_equal,
    "not_equal": lambda a, b: keys_equal(a, b, negate=True),
    "ne": lambda a, b: keys_equal(a, b, negate=True),
    "isin": _keys_isin, "array_equal": _keys_array_equal,
}


# The nanofn.numpy functions that take arrays of keys (the ones JAX's take that only move,
# pick or copy elements): `nanofn/numpy/__init__.py` wraps them with `accepting_keys`.
KEY_ARRAY_FUNCTIONS = (
    "array", "asarray", "stack", "concatenate", "concat", "hstack", "vstack", "dstack",
    "column_stack", "block", "append", "insert", "delete", "where", "select", "choose",
    "compress", "extract", "reshape", "ravel", "resize", "expand_dims", "squeeze",
    "broadcast_to", "broadcast_arrays", "take", "take_along_axis", "transpose",
    "permute_dims", "matrix_transpose", "moveaxis", "swapaxes", "rollaxis", "copy", "flip",
    "fliplr", "flipud", "roll", "rot90", "tile", "repeat", "split", "array_split", "hsplit",
    "vsplit", "unstack", "atleast_1d", "atleast_2d", "atleast_3d", "tril", "triu",
    "empty_like", "zeros_like", "ones_like", "full_like", "full", "diagonal", "diagflat",
    "meshgrid", "ix_", "put", "place", "fill_diagonal",
    # comparisons of whole keys (`_KEY_SPECIAL`)
    "equal", "not_equal", "isin", "array_equal")

# The nanofn.lax functions that take arrays of keys, as JAX's do (they move, pick or copy
# keys; `eq`/`ne` compare whole keys): wrap each with `accepting_keys`, as nanofn.numpy does.
KEY_LAX_FUNCTIONS = (
    "select", "select_n", "concatenate", "reshape", "broadcast", "broadcast_in_dim",
    "broadcast_to_rank", "dynamic_slice", "dynamic_slice_in_dim", "dynamic_update_slice",
    "dynamic_update_slice_in_dim", "dynamic_update_index_in_dim", "dynamic_index_in_dim",
    "index_in_dim", "slice", "slice_in_dim", "squeeze", "expand_dims", "transpose", "rev",
    "pad", "full_like", "collapse", "index_take", "eq", "ne")


def accepting_keys(fun):
    """`fun` that also takes arrays of typed keys (through `on_key_words`); with none among
    its arguments it is `fun` itself plus one quick test.

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> from nanofn._keys import accepting_keys
        >>> stack = accepting_keys(fnp.stack.__wrapped__)
        >>> stack([nanofn.random.key(0)] * 3).shape, stack([fnp.ones(2)] * 3).shape
        ((3,), (3, 2))
    """
    special = _KEY_SPECIAL.get(getattr(fun, "__name__", None))

    @functools.wraps(fun)
    def _accepting(*args, **kwargs):  # "_": errors name `fun`, the function called
        if has_keys(args, kwargs):
            if special is not None:
                return special(*args, **kwargs)
            return on_key_words(fun, *args, **kwargs)
        return fun(*args, **kwargs)
    return _accepting


class _KeyAt:
    """`keys.at[idx].get() / .set(keys)`: functional updates of a key array."""

    __slots__ = ("keys", "idx")

    def __init__(self, keys, idx=None):
        self.keys, self.idx = keys, idx

    def __getitem__(self, idx):
        return _KeyAt(self.keys, idx)

    def get(self, **kwargs):
        return on_key_words(lambda w: w.at[self.idx].get(**kwargs), self.keys)

    def set(self, values, **kwargs):
        return on_key_words(lambda w, v: w.at[self.idx].set(v, **kwargs), self.keys, values)

    def _no_arithmetic(self, *args, **kwargs):
        raise TypeError("x.at[...] on a key array supports get and set only: arithmetic "
                        "updates (add, multiply, min, max, ...) are not defined on keys")

    add = multiply = mul = divide = power = min = max = apply = _no_arithmetic


PRNGKeyArray.at = property(lambda self: _KeyAt(self))


def is_typed_key(x) -> bool:
    """Whether `x` is a typed key array (from `random.key`), not raw uint32 words.

    Example:
        >>> import nanofn
        >>> from nanofn._keys import is_typed_key
        >>> is_typed_key(nanofn.random.key(0)), is_typed_key(nanofn.random.PRNGKey(0))
        (True, False)
    """
    return isinstance(x, PRNGKeyArray)


def _unflatten(_, children):
    """A key array again from its one child, when that child still is key words.

    A function mapped over a tree (`tree.map(f, keys)`) sees the words and may return
    something else: a shape, a bool, None. That comes back as it is, not wrapped as keys.
    A float0 child is a key's gradient (`grad(..., allow_int=True)`, `vjp`): as in JAX, it
    comes back as a float0 array of the keys' shape.
    """
    (words,) = children
    dtype = getattr(words, "dtype", None)
    if dtype is None or not hasattr(words, "shape"):
        return words
    from nanofn.dtypes import float0
    if dtype == float0 and len(words.shape) >= 1:
        return np.zeros(tuple(words.shape)[:-1], float0)
    return PRNGKeyArray(words) if dtype == np.uint32 else words


register_pytree_node(PRNGKeyArray, lambda k: ((k._base,), None), _unflatten)
