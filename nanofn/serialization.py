"""Save and load pytrees of arrays (parameters, optimizer state) without pickle.

A checkpoint is an ordinary ``.npz`` file (a zip of ``.npy`` files, readable by
``np.load``) with two kinds of members:

- ``__nanofn_tree__.npy``: a uint8 array holding UTF-8 JSON that describes the tree's
  structure (containers, dict keys, NamedTuple names, Python scalars, strings), and
- ``a0.npy``, ``a1.npy``, ...: one per array leaf, in the order the structure names them.

Loading never runs code from the file: arrays are read with ``allow_pickle=False`` and
the structure is plain JSON. What round-trips, bit for bit:

- containers: ``dict`` and ``collections.OrderedDict`` (keys ``str``, ``int``, ``float``,
  ``bool`` or ``None``; insertion order kept), ``list``, ``tuple``, NamedTuples, ``None``;
- arrays: ``np.ndarray`` of any non-object dtype (shape, dtype and bytes kept), and anything
  else with ``__array__`` (nanofn and JAX arrays), saved as ``np.asarray(x)``;
- scalars: numpy scalars (``np.float32(1.5)`` comes back as ``np.float32``) and Python
  ``bool``, ``int`` (any size), ``float`` (bit-exact, including inf and -0.0), ``complex``
  and ``str``.

``load`` returns numpy arrays, whatever array type was saved; wrap them with
``nanofn.numpy.asarray`` (or ``nanofn.tree.map``) if you need nanofn arrays.

NamedTuples are stored by ``module:qualname`` and field names. On load, the class is looked
up in the modules the process has already imported (``sys.modules``); the only modules
``load`` imports itself are nanofn's own (``nanofn.*``), so a file can never make Python
import arbitrary code. The class is used only if it is a NamedTuple class with the same
field names; otherwise (class not found, not a NamedTuple, fields changed) the node comes
back as a plain ``tuple`` and a ``UserWarning`` says why. Import the module that defines your
NamedTuple before calling ``load`` to get the class back.

Writes are atomic: ``save`` writes a temporary file in the target's directory, flushes and
fsyncs it, then renames it over the target with ``os.replace``; a crash or an exception
midway leaves any previous checkpoint untouched and removes the temporary file. A process
killed mid-save (``kill -9``) cannot clean up: its hidden ``.<name>.<hex>.tmp`` file is
removed by the next ``save`` of the same checkpoint. A symlink is written through: the
file it points to is replaced and the link stays.

Reading a file bounds everything the file declares by its real size before allocating
(the number of arrays, each member's size, each array's shape and number of dimensions),
stores no compressed members (so none can inflate into a bomb), and rejects an archive
that holds a member twice; such files raise ``ValueError`` naming the file and the field.
Other objects (custom pytree nodes, dataclasses, functions) raise ``TypeError`` at save
time, naming where in the tree they are; convert them to dicts or tuples first.
"""

from __future__ import annotations

import collections
import importlib
import io
import json
import math
import os
import re
import secrets
import stat
import struct
import sys
import time
import warnings
import zipfile
import zlib
from typing import Any

import numpy as np

from nanofn._keys import PRNGKeyArray
from nanofn.random._threefry import key_data, wrap_key_data

__all__ = ["save", "load", "to_bytes", "from_bytes", "save_safetensors", "load_safetensors",
           "tensor_names"]

_FORMAT = "nanofn.serialization"
_VERSION = 1
_TREE = "__nanofn_tree__"
_ZIP_MAGIC = b"PK\x03\x04"


class _BadFile(Exception):
    """Internal: the file's content is inconsistent; turned into ValueError naming the file."""


# --- encoding: tree -> (JSON structure, list of arrays) ----------------------------------

def _float_bits(x: float) -> str:
    return struct.pack(">d", x).hex()  # the IEEE bits, so even NaN payloads survive


def _bits_float(bits) -> float:
    if not (isinstance(bits, str) and len(bits) == 16):
        raise _BadFile(f"malformed float bits {bits!r:.40}")
    return struct.unpack(">d", bytes.fromhex(bits))[0]


def _scalar_node(x):
    """JSON node for a Python scalar or string, or None if x is not one."""
    t = type(x)
    if x is None:
        return {"t": "none"}
    if t is bool:
        return {"t": "bool", "v": x}
    if t is int:
        return {"t": "int", "v": x}
    if t is float:
        return {"t": "float", "v": _float_bits(x)}
    if t is complex:
        return {"t": "complex", "v": [_float_bits(x.real), _float_bits(x.imag)]}
    if t is str:
        return {"t": "str", "v": x}
    return None


def _is_namedtuple(x) -> bool:
    return isinstance(x, tuple) and hasattr(type(x), "_fields")


def _array_leaf(x, arrays: list, path: str, kind: str) -> dict:
    a = np.asarray(x)
    if a.dtype.hasobject:
        raise TypeError(f"serialization.save: the array at {path} has dtype {a.dtype}, which "
                        "holds Python objects and cannot be saved without pickle; convert it "
                        "to a numeric, bool or string dtype")
    arrays.append(a)
    return {"t": kind, "i": len(arrays) - 1}


def _encode(x, arrays: list, path: str) -> dict:
    node = _scalar_node(x)
    if node is not None:
        return node
    t = type(x)
    if isinstance(x, np.generic):
        return _array_leaf(x, arrays, path, "scalar")
    if isinstance(x, np.ndarray):
        return _array_leaf(x, arrays, path, "array")
    if t is PRNGKeyArray:  # typed keys: their uint32 words, loaded back as typed keys
        return _array_leaf(key_data(x), arrays, path, "keys")
    if t is dict or t is collections.OrderedDict:
        keys = []
        for k in x:
            key = _scalar_node(k)
            if key is None or key["t"] in ("complex",):
                raise TypeError(f"serialization.save: the dict at {path} has key {k!r} of type "
                                f"{type(k).__name__}; keys must be str, int, float, bool or None")
            keys.append(key)
        children = [_encode(v, arrays, f"{path}[{k!r}]") for k, v in x.items()]
        return {"t": "dict" if t is dict else "odict", "k": keys, "c": children}
    if t is list or t is tuple:
        children = [_encode(v, arrays, f"{path}[{i}]") for i, v in enumerate(x)]
        return {"t": t.__name__, "c": children}
    if _is_namedtuple(x):
        children = [_encode(v, arrays, f"{path}.{f}") for f, v in zip(t._fields, x)]
        return {"t": "namedtuple", "type": f"{t.__module__}:{t.__qualname__}",
                "fields": list(t._fields), "c": children}
    if hasattr(x, "__array__"):
        return _array_leaf(x, arrays, path, "array")
    raise TypeError(f"serialization.save: cannot save the object at {path} of type "
                    f"{t.__module__}.{t.__qualname__}; checkpoints hold dicts, lists, tuples, "
                    "NamedTuples, None, arrays, typed PRNG keys, numpy scalars, Python "
                    "scalars and strings; convert it to one of those first")


def _members(tree) -> dict[str, np.ndarray]:
    """The npz members for ``tree``: its JSON structure record and its array leaves."""
    arrays: list[np.ndarray] = []
    structure = _encode(tree, arrays, "tree")
    record = {"format": _FORMAT, "version": _VERSION, "leaves": len(arrays), "tree": structure}
    text = json.dumps(record, separators=(",", ":")).encode("utf-8")
    members = {_TREE: np.frombuffer(text, dtype=np.uint8)}
    members.update((f"a{i}", a) for i, a in enumerate(arrays))
    return members


def _write_npz(f, members: dict[str, np.ndarray]) -> None:
    """Writes the npz members into the binary file object ``f``."""
    np.savez(f, allow_pickle=False, **members)


# --- decoding: (JSON structure, arrays) -> tree --------------------------------------------

def _resolve_namedtuple(ref: str, fields: list, name: str):
    """The NamedTuple class named ``module:qualname``, or None (with a warning) if unsafe."""
    module_name, _, qualname = ref.partition(":")
    why = None
    module = sys.modules.get(module_name)
    if module is None and (module_name == "nanofn" or module_name.startswith("nanofn.")):
        try:
            module = importlib.import_module(module_name)
        except (ImportError, ValueError):
            module = None
    if module is None:
        why = f"module {module_name!r} is not imported; import it before load"
    else:
        obj = module
        for part in qualname.split("."):
            # Look in __dict__ only: no module __getattr__ hooks (which may import) and no
            # descriptors run on behalf of the file.
            namespace = getattr(obj, "__dict__", None)
            obj = namespace.get(part) if namespace is not None and part.isidentifier() else None
        if obj is None:
            why = f"{module_name!r} has no attribute {qualname!r}"
        elif not (isinstance(obj, type) and issubclass(obj, tuple)
                  and isinstance(getattr(obj, "_fields", None), tuple)):
            why = f"{ref} is not a NamedTuple class"
        elif list(obj._fields) != fields:
            why = f"{ref} now has fields {list(obj._fields)}, the file has {fields}"
        else:
            return obj
    warnings.warn(f"serialization.load: {name!r}: restoring NamedTuple {ref} as a plain tuple: "
                  f"{why}", UserWarning, stacklevel=2)
    return None


def _check(cond, msg):
    if not cond:
        raise _BadFile(msg)


def _decode(node, leaves: list, used: list, name: str):
    _check(isinstance(node, dict) and isinstance(node.get("t"), str),
           f"malformed structure node {node!r:.80}")
    t = node["t"]
    if t == "none":
        return None
    if t in ("bool", "int", "str"):
        v = node.get("v")
        want = {"bool": bool, "int": int, "str": str}[t]
        _check(type(v) is want, f"malformed {t} node {node!r:.80}")
        return v
    if t == "float":
        return _bits_float(node.get("v"))
    if t == "complex":
        v = node.get("v")
        _check(isinstance(v, list) and len(v) == 2, f"malformed complex node {node!r:.80}")
        return complex(_bits_float(v[0]), _bits_float(v[1]))
    if t in ("array", "scalar", "keys"):
        i = node.get("i")
        _check(type(i) is int and 0 <= i < len(leaves), f"leaf index {i!r} out of range")
        _check(not used[i], f"leaf a{i} is referenced twice")
        used[i] = True
        if t == "scalar":
            _check(leaves[i].ndim == 0, f"scalar leaf a{i} has shape {leaves[i].shape}")
            return leaves[i][()]
        if t == "keys":
            _check(leaves[i].dtype == np.uint32 and leaves[i].shape[-1:] == (2,),
                   f"key leaf a{i} is not uint32 words of shape (..., 2)")
            return wrap_key_data(leaves[i])
        return leaves[i]
    children = node.get("c")
    _check(isinstance(children, list), f"{t} node without children list")
    values = [_decode(c, leaves, used, name) for c in children]
    if t == "list":
        return values
    if t == "tuple":
        return tuple(values)
    if t in ("dict", "odict"):
        keys = node.get("k")
        _check(isinstance(keys, list) and len(keys) == len(values), "dict keys do not match")
        _check(all(isinstance(k, dict) and k.get("t") in ("none", "bool", "int", "float", "str")
                   for k in keys), "malformed dict key")
        keys = [_decode(k, leaves, used, name) for k in keys]
        out = (dict if t == "dict" else collections.OrderedDict)(zip(keys, values))
        _check(len(out) == len(keys), "duplicate dict keys")
        return out
    if t == "namedtuple":
        ref, fields = node.get("type"), node.get("fields")
        _check(isinstance(ref, str) and ":" in ref and isinstance(fields, list)
               and all(isinstance(f, str) for f in fields) and len(fields) == len(values),
               f"malformed namedtuple node {ref!r}")
        cls = _resolve_namedtuple(ref, fields, name)
        return tuple(values) if cls is None else cls._make(values)
    raise _BadFile(f"unknown node type {t!r}")


_MAX_NDIM = 64  # numpy's limit on dimensions


def _read_member(zf: zipfile.ZipFile, member: str, file_size: int) -> np.ndarray:
    """One ``.npy`` member, its header checked against its real size before allocating."""
    info = zf.getinfo(member)
    # `save` stores members uncompressed, so every declared size is bounded by the real
    # size of the file: a member cannot inflate (a deflate bomb) into more memory
    _check(info.compress_type == zipfile.ZIP_STORED,
           f"member {member!r} is compressed (zip method {info.compress_type}); nanofn "
           "checkpoints store their members uncompressed, so their sizes are bounded by the "
           "file's size")
    _check(info.file_size == info.compress_size <= file_size,
           f"member {member!r} declares {info.file_size} bytes, more than the file holds")
    data = zf.read(member)  # reads the whole member, so its CRC-32 is checked
    stream = io.BytesIO(data)
    try:
        version = np.lib.format.read_magic(stream)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(stream)
        else:
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(stream)
    except ValueError as e:
        raise _BadFile(f"member {member!r} has a malformed .npy header ({e})") from None
    _check(len(shape) <= _MAX_NDIM, f"member {member!r} declares {len(shape)} dimensions "
           f"(field 'shape'); arrays have at most {_MAX_NDIM}")
    _check(not dtype.hasobject, f"member {member!r} has dtype {dtype} (field 'descr'), which "
           "needs pickle; checkpoints hold no Python objects")
    nbytes = math.prod(shape) * dtype.itemsize  # Python ints: no overflow
    held = len(data) - stream.tell()
    _check(nbytes == held, f"member {member!r} declares shape {tuple(shape)} of {dtype} "
           f"(field 'shape': {nbytes} bytes) but holds {held} bytes of data")
    stream.seek(0)
    return np.lib.format.read_array(stream, allow_pickle=False)


def _read_npz(f, name: str):
    head = f.read(4)
    f.seek(0)
    if head != _ZIP_MAGIC:
        what = "it is empty" if not head else f"it starts with {head!r}, not an npz/zip header"
        raise ValueError(f"serialization.load: {name!r} is not a nanofn checkpoint: {what}")
    try:
        size = _size_of(f)  # the file's real size bounds every size it declares
        with zipfile.ZipFile(f) as zf:
            names = zf.namelist()
            members = set(names)
            if len(members) != len(names):
                twice = sorted(n for n, c in collections.Counter(names).items() if c > 1)[:5]
                raise _BadFile(f"the archive holds members {twice} more than once; a zip "
                               "reader would silently take the last copy")
            _check(f"{_TREE}.npy" in members,
                   f"it is an npz/zip file without the {_TREE!r} structure record, so it was "
                   "not written by nanofn.serialization.save; read it with np.load instead")
            text = _read_member(zf, f"{_TREE}.npy", size).tobytes()
            record = json.loads(text.decode("utf-8"))
            _check(isinstance(record, dict) and record.get("format") == _FORMAT,
                   "its structure record is not in nanofn's format")
            version = record.get("version")
            _check(version == _VERSION, f"it has format version {version!r}; this nanofn "
                   f"reads version {_VERSION}; upgrade nanofn")
            n = record.get("leaves")
            _check(type(n) is int and n >= 0, f"bad leaf count {n!r}")
            # bounded by what the archive really holds before anything is built from it
            _check(n <= len(members) - 1, f"its structure record declares {n} arrays (field "
                   f"'leaves') but the archive holds only {len(members) - 1} array members")
            expected = {f"{_TREE}.npy"} | {f"a{i}.npy" for i in range(n)}
            _check(members == expected, f"its members {sorted(members - expected)[:5]} are "
                   f"unexpected or {sorted(expected - members)[:5]} are missing")
            leaves = [_read_member(zf, f"a{i}.npy", size) for i in range(n)]
        used = [False] * n
        tree = _decode(record.get("tree"), leaves, used, name)
        _check(all(used), f"{used.count(False)} stored arrays are not referenced")
        return tree
    except _BadFile as e:
        raise ValueError(f"serialization.load: {name!r} is not a valid nanofn checkpoint: {e}"
                         ) from None
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, KeyError,
            struct.error, NotImplementedError, RuntimeError) as e:
        # RuntimeError: zipfile's "encrypted" complaint and RecursionError on absurd nesting;
        # NotImplementedError: zipfile's unknown versions or compression methods.
        raise ValueError(f"serialization.load: {name!r} is truncated or corrupted "
                         f"({type(e).__name__}: {e})") from None


def _size_of(f) -> int:
    position = f.tell()
    size = f.seek(0, io.SEEK_END)
    f.seek(position)
    return size


# --- public API ------------------------------------------------------------------------------

_STALE_AFTER_S = 60.0  # a temporary file this old and unlocked belongs to a dead save


def _lock_exclusive(fd: int) -> bool:
    """Take an exclusive advisory lock on `fd` without waiting (True if taken). A save
    holds one on its temporary file while it writes; the lock dies with its process, even
    under `kill -9`. Without `fcntl` (Windows), an open file cannot be removed anyway."""
    try:
        import fcntl
    except ImportError:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:
        return False


def _remove_stale_temporaries(directory: str, base: str) -> None:
    """Remove ``.<base>.<hex>.tmp`` files that killed saves of the same checkpoint left
    behind: those that no live save holds locked and that are not brand new."""
    pattern = re.compile(rf"\.{re.escape(base)}\.[0-9a-f]{{12}}\.tmp")
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return
    now = time.time()
    for entry in entries:
        if not pattern.fullmatch(entry.name):
            continue
        try:
            st = entry.stat(follow_symlinks=False)
            if not stat.S_ISREG(st.st_mode) or now - st.st_mtime < _STALE_AFTER_S:
                continue  # not a file we write, or perhaps a save that just started
            fd = os.open(entry.path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except OSError:
            continue
        try:
            if _lock_exclusive(fd):
                os.unlink(entry.path)
        except OSError:
            pass
        finally:
            os.close(fd)


def _write_atomically(path: str, write) -> None:
    """Runs ``write(f)`` on a fresh temporary file next to ``path``, then renames it over it.

    A symlink at ``path`` is followed: the file it points to is replaced and the link
    stays. Temporary files of earlier saves of the same file that were killed midway are
    removed first."""
    path = os.path.realpath(path)  # write through a symlink to its target
    directory = os.path.dirname(path)
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"serialization.save: cannot write {path!r}: directory "
                                f"{directory!r} does not exist; create it first")
    base = os.path.basename(path)
    _remove_stale_temporaries(directory, base)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    while True:
        tmp = os.path.join(directory, f".{base}.{secrets.token_hex(6)}.tmp")
        try:
            fd = os.open(tmp, flags, 0o666)  # the umask applies, as for an ordinary file
            break
        except FileExistsError:
            continue
    _lock_exclusive(fd)  # marks it as in use until this process closes it (or dies)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        # closed (so unlocked), but just written: too new for another save to remove
        try:  # overwriting keeps the old file's permissions
            os.chmod(tmp, stat.S_IMODE(os.stat(path).st_mode))
        except FileNotFoundError:
            pass
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    if hasattr(os, "O_DIRECTORY"):  # make the rename itself durable (POSIX)
        try:
            dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        except OSError:
            return
        try:
            os.fsync(dir_fd)
        except OSError:
            pass
        finally:
            os.close(dir_fd)


def save(path: str | os.PathLike, tree: Any) -> None:
    """Saves a pytree of arrays to ``path`` atomically, without pickle.

    The file is a standard ``.npz`` (any file name works; ``.npz`` is a good suffix) that
    ``load`` turns back into the same tree: same containers, keys, dtypes, shapes and
    bytes. The write goes to a temporary file in the same directory that replaces ``path``
    only once it is complete, so an interrupted save never destroys an earlier checkpoint.
    See the module docstring for what a tree may contain.

    A symlink at ``path`` is followed: the checkpoint is written to the file the link
    points to (replacing it atomically), and the link itself stays. Hidden temporary files
    (``.<name>.<hex>.tmp``) left by earlier saves of the same file that were killed midway
    are removed (those over a minute old that no running save holds locked).

    Args:
      path: file to write; its directory must exist. An existing file is replaced.
      tree: nested dicts, lists, tuples, NamedTuples and None, with arrays (anything with
        ``__array__``), typed PRNG keys (saved as their words, loaded as keys), numpy
        scalars, Python scalars or strings as leaves.

    Raises:
      TypeError: the tree holds something that cannot be saved (the message says where).
      FileNotFoundError: the directory of ``path`` does not exist.

    Example:
      >>> import os, tempfile
      >>> import numpy as np
      >>> from nanofn import serialization
      >>> path = os.path.join(tempfile.mkdtemp(), "ckpt.npz")
      >>> params = {"w": np.ones((2, 3), np.float32), "b": np.zeros(3, np.float32)}
      >>> serialization.save(path, {"params": params, "step": 10})
      >>> restored = serialization.load(path)
      >>> restored["step"], restored["params"]["w"].shape, restored["params"]["w"].dtype
      (10, (2, 3), dtype('float32'))
    """
    path = os.fspath(path)
    members = _members(tree)  # fails on unsupported leaves before touching the disk
    _write_atomically(path, lambda f: _write_npz(f, members))


def load(path: str | os.PathLike) -> Any:
    """Loads a pytree written by ``save``; arrays come back as numpy arrays.

    Nothing from the file is executed: arrays are read without pickle and the structure is
    JSON (see the module docstring for how NamedTuple classes are found). The whole file is
    checked before anything is returned, so a damaged file raises instead of giving a
    partial tree.

    Args:
      path: a file written by ``save``.

    Returns:
      The saved tree, with numpy arrays (``np.ndarray``) where arrays were saved.

    Raises:
      FileNotFoundError: ``path`` does not exist.
      ValueError: the file is truncated, corrupted, or was not written by ``save``, or it
        declares more than it holds (arrays, sizes, shapes, over 64 dimensions, compressed
        or duplicate members); the message names the file and the problem.

    Example:
      >>> import os, tempfile
      >>> import numpy as np
      >>> from nanofn import serialization
      >>> path = os.path.join(tempfile.mkdtemp(), "state.npz")
      >>> serialization.save(path, (np.arange(3, dtype=np.int32), None, [1.5]))
      >>> serialization.load(path)
      (array([0, 1, 2], dtype=int32), None, [1.5])
    """
    name = os.fspath(path)
    try:
        f = open(name, "rb")
    except FileNotFoundError:
        raise FileNotFoundError(f"serialization.load: no such checkpoint file {name!r}"
                                ) from None
    with f:
        return _read_npz(f, name)


def to_bytes(tree: Any) -> bytes:
    """Serializes a pytree to bytes in the same format ``save`` writes to disk.

    Args:
      tree: as for ``save``.

    Returns:
      The bytes of an ``.npz`` checkpoint; ``from_bytes`` reverses it.

    Example:
      >>> import numpy as np
      >>> from nanofn import serialization
      >>> data = serialization.to_bytes({"x": np.float32(2.0)})
      >>> serialization.from_bytes(data)
      {'x': np.float32(2.0)}
    """
    buffer = io.BytesIO()
    _write_npz(buffer, _members(tree))
    return buffer.getvalue()


def from_bytes(data: bytes) -> Any:
    """Deserializes bytes made by ``to_bytes`` (or read from a ``save`` file).

    Unlike ``flax.serialization.from_bytes``, no target tree is needed: the structure is
    stored with the arrays.

    Args:
      data: the bytes.

    Returns:
      The tree, with numpy arrays as leaves where arrays were saved.

    Raises:
      ValueError: the bytes are truncated, corrupted or not a nanofn checkpoint.

    Example:
      >>> from nanofn import serialization
      >>> serialization.from_bytes(serialization.to_bytes([1, (2.5, None)]))
      [1, (2.5, None)]
    """
    return _read_npz(io.BytesIO(bytes(data)), "<bytes>")


from nanofn._safetensors import (  # noqa: E402  (they use _write_atomically above)
    load_safetensors as load_safetensors, save_safetensors as save_safetensors,
    tensor_names as tensor_names,
)
