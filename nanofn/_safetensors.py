"""safetensors interop: pytrees of arrays to and from the `.safetensors` format that
PyTorch, JAX (flax, equinox) and Hugging Face read, through the `safetensors` package (the
optional extra `nanofn[safetensors]`; it is small, maintained by Hugging Face, and never
unpickles anything).

Tensor names are the pytree key paths joined by dots, as PyTorch's `state_dict` names
them: `{"layers": [{"w": ...}]}` gives `layers.0.w`.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from nanofn import tree_util


def _safetensors_numpy():
    try:
        import safetensors.numpy as st
    except ImportError as err:
        raise ImportError("safetensors support needs the safetensors package: "
                          "pip install 'nanofn[safetensors]'") from err
    return st


def _key_name(k) -> str:
    for attr in ("key", "idx", "name"):
        if hasattr(k, attr):
            return str(getattr(k, attr))
    return str(k)


def tensor_names(tree) -> dict[str, Any]:
    """`{dotted key path: leaf}` of a pytree, in leaf order.

    Example:
        >>> from nanofn.serialization import tensor_names
        >>> list(tensor_names({"layers": [{"w": 1.0, "b": 2.0}], "head": 3.0}))
        ['head', 'layers.0.b', 'layers.0.w']
    """
    from nanofn._keys import is_typed_key
    from nanofn.random import key_data
    out = {}
    # A typed PRNG key is one tensor, its uint32 words, named by the key's own path (not
    # by the path to its words inside it).
    for path, leaf in tree_util.tree_flatten_with_path(tree, is_leaf=is_typed_key)[0]:
        if is_typed_key(leaf):
            leaf = key_data(leaf)
        name = ".".join(_key_name(k) for k in path) or "_"
        if name in out:
            raise ValueError(f"save_safetensors: two leaves are both named {name!r}; rename "
                             "the keys so their dotted paths differ")
        out[name] = leaf
    return out


def save_safetensors(path: str | os.PathLike, tree, metadata: dict[str, str] | None = None):
    """Save a pytree of arrays as a `.safetensors` file, atomically (like `save`).

    Args:
        path: the file to write; its directory must exist.
        tree: a pytree whose leaves are arrays or numbers; typed PRNG keys are saved as
          their uint32 words (`random.key_data`), and `load_safetensors(path, like=tree)`
          gives them back as keys.
        metadata: optional text metadata stored in the header.

    Example:
        >>> import os, tempfile, numpy as np
        >>> from nanofn import serialization
        >>> path = os.path.join(tempfile.mkdtemp(), "model.safetensors")
        >>> params = {"dense": {"w": np.ones((2, 3), np.float32), "b": np.zeros(3, np.float32)}}
        >>> serialization.save_safetensors(path, params)
        >>> import safetensors.numpy
        >>> sorted(safetensors.numpy.load_file(path))
        ['dense.b', 'dense.w']
    """
    from nanofn.serialization import _write_atomically
    st = _safetensors_numpy()
    tensors = {}
    for name, leaf in tensor_names(tree).items():
        arr = np.asarray(leaf)
        if arr.dtype == object or arr.dtype.kind not in "biuf":
            raise TypeError(f"save_safetensors: leaf {name!r} has dtype {arr.dtype}; "
                            "safetensors holds bool, integer and float arrays")
        tensors[name] = np.ascontiguousarray(arr) if arr.ndim else arr.copy()
    data = st.save(tensors, metadata=metadata)
    _write_atomically(os.fspath(path), lambda f: f.write(data))


def load_safetensors(path: str | os.PathLike, like=None):
    """Load a `.safetensors` file: a flat `{name: array}` dict, or, with `like=tree`, a
    pytree of `like`'s structure whose leaves are the tensors of the same dotted names.

    With `like`, every name must be present with the shape and dtype of `like`'s leaf, and
    the file must hold no other tensors; otherwise a `ValueError` names the tensor.

    Example:
        >>> import os, tempfile, numpy as np
        >>> from nanofn import serialization
        >>> path = os.path.join(tempfile.mkdtemp(), "model.safetensors")
        >>> params = {"w": np.arange(3, dtype=np.float32)}
        >>> serialization.save_safetensors(path, params)
        >>> serialization.load_safetensors(path, like=params)["w"]
        array([0., 1., 2.], dtype=float32)
    """
    st = _safetensors_numpy()
    path = os.fspath(path)
    try:
        tensors = st.load_file(path)
    except Exception as err:  # noqa: BLE001 (safetensors raises its own error types)
        raise ValueError(f"load_safetensors: {path!r} is not a readable safetensors file: "
                         f"{err}") from None
    if like is None:
        return tensors
    wanted = tensor_names(like)
    missing = [n for n in wanted if n not in tensors]
    extra = [n for n in tensors if n not in wanted]
    if missing or extra:
        raise ValueError(f"load_safetensors: {path!r} does not match the tree given as like="
                         f"{': missing ' + ', '.join(missing) if missing else ''}"
                         f"{'; unexpected ' + ', '.join(extra) if extra else ''}")
    leaves = []
    for name, ref in wanted.items():
        arr, ref = tensors[name], np.asarray(ref)
        if arr.shape != ref.shape or arr.dtype != ref.dtype:
            raise ValueError(f"load_safetensors: tensor {name!r} in {path!r} is "
                             f"{arr.dtype}{list(arr.shape)}, but like= has "
                             f"{ref.dtype}{list(ref.shape)}")
        leaves.append(arr)
    return tree_util.tree_unflatten(tree_util.tree_structure(like), leaves)
