"""Readers for IDX files, the format MNIST (and Fashion-MNIST, KMNIST, EMNIST) ship in.

An IDX file is a 4-byte magic number ``0x00 0x00 <type code> <ndim>``, then ``ndim``
big-endian uint32 dimension sizes, then the values in C order, big-endian. nanofn reads
files the user already has; it never downloads anything.
"""

from __future__ import annotations

import gzip
import math
import os
import zlib

import numpy as np

# IDX type code -> big-endian numpy dtype
_IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_GZIP_MAGIC = b"\x1f\x8b"


_MAX_NDIM = 64  # numpy's limit on dimensions
# deflate turns at most about 1032 bytes out of one input byte (its longest match, 258
# bytes, costs at least 2 bits), so a gzip file of n bytes cannot hold more than this
_DEFLATE_MAX_RATIO = 1032
_CHUNK = 1 << 20


def _is_gzip(path, f) -> bool:
    head = f.read(2)
    f.seek(0)
    return str(path).endswith(".gz") or head == _GZIP_MAGIC


def _header(stream, name: str):
    """The magic number and dimensions: (big-endian dtype, shape, header size)."""
    magic = stream.read(4)
    if len(magic) < 4:
        raise ValueError(f"read_idx: {name!r} is too short to be an IDX file: it has "
                         f"{len(magic)} bytes, the magic number alone needs 4")
    zero0, zero1, code, ndim = magic
    if zero0 != 0 or zero1 != 0:
        raise ValueError(f"read_idx: {name!r} has a bad magic number {magic.hex(' ')}: an "
                         "IDX file starts with 00 00 <type> <ndim>; is it an IDX file?")
    if code not in _IDX_DTYPES:
        known = ", ".join(f"0x{c:02X} ({d.name})" for c, d in _IDX_DTYPES.items())
        raise ValueError(f"read_idx: {name!r} has an unknown dtype code 0x{code:02X} in its "
                         f"magic number; known codes: {known}")
    if ndim > _MAX_NDIM:
        raise ValueError(f"read_idx: {name!r} declares {ndim} dimensions in its magic number "
                         f"(field 'ndim'); arrays have at most {_MAX_NDIM}")
    dims = stream.read(4 * ndim)
    header = 4 + 4 * ndim
    if len(dims) < 4 * ndim:
        raise ValueError(f"read_idx: {name!r} is truncated in its header: {ndim} dimensions "
                         f"need {header} header bytes, the file has {4 + len(dims)}")
    shape = tuple(int(d) for d in np.frombuffer(dims, dtype=">u4", count=ndim))
    return _IDX_DTYPES[code], shape, header


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Reads one IDX file (the MNIST format), gzipped or not, into a numpy array.

    The file is decompressed when its name ends in ``.gz`` or its first bytes are the gzip
    magic. The header is checked: the magic number must be ``0x00 0x00 <type> <ndim>``
    with a known type code (0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32,
    0x0E float64; big-endian on disk), and the data must be exactly as long as the
    dimensions say.

    Args:
      path: the file to read.

    Returns:
      A writable numpy array in native byte order with the file's shape and dtype.

    Raises:
      FileNotFoundError: the file does not exist.
      ValueError: the file is not a valid IDX file; the message names the file and the
        problem (bad magic, unknown type code, truncated header or data, trailing bytes).

    Example:
      >>> import os, tempfile
      >>> import numpy as np
      >>> from nanofn.data import read_idx
      >>> path = os.path.join(tempfile.mkdtemp(), "labels-idx1-ubyte")
      >>> with open(path, "wb") as f:
      ...     _ = f.write(bytes([0, 0, 0x08, 1, 0, 0, 0, 3, 7, 2, 1]))
      >>> read_idx(path)
      array([7, 2, 1], dtype=uint8)
    """
    name = os.fspath(path)
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if not _is_gzip(path, f):
            return _read_stream(f, name, size, False)
        try:
            with gzip.GzipFile(fileobj=f) as g:
                return _read_stream(g, name, size * _DEFLATE_MAX_RATIO, True)
        except (OSError, EOFError, zlib.error) as e:
            raise ValueError(f"read_idx: {name!r} is not a valid gzip file ({e}); "
                             "re-download or decompress it") from None


def _read_stream(stream, name: str, limit: int, gzipped: bool) -> np.ndarray:
    """Check the header, bound the declared size by what the file can hold (`limit`
    bytes), then read exactly that much: nothing is allocated or inflated beyond it."""
    dtype, shape, header = _header(stream, name)
    expected = math.prod(shape) * dtype.itemsize  # Python ints: no overflow on bad headers
    what = f"expected {expected} data bytes for shape {shape} of {dtype.newbyteorder('=')}"
    if header + expected > limit:
        got = f"got {limit - header}" if not gzipped else (
            f"but its header's dimensions ask for more than {limit // _DEFLATE_MAX_RATIO} "
            f"bytes of gzip can inflate to ({limit} bytes at most)")
        raise ValueError(f"read_idx: {name!r} is truncated: {what}, {got}")
    parts, left = [], expected  # in chunks: a short stream never costs `expected` bytes
    while left:
        part = stream.read(min(left, _CHUNK))
        if not part:
            break
        parts.append(part)
        left -= len(part)
    if left:
        raise ValueError(f"read_idx: {name!r} is truncated: {what}, got {expected - left}")
    if stream.read(1):
        raise ValueError(f"read_idx: {name!r} is too long (trailing bytes): {what}, got more")
    data = np.frombuffer(b"".join(parts), dtype=dtype).reshape(shape)
    return data.astype(dtype.newbyteorder("="))  # native byte order, and a writable copy


_MNIST_NAMES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
                "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def _find(directory: str, stem: str) -> str | None:
    for name in (stem, stem + ".gz"):
        candidate = os.path.join(directory, name)
        if os.path.isfile(candidate):
            return candidate
    return None


def load_mnist(directory: str | os.PathLike, split: str = "train", *, dtype=np.float32,
               normalize: bool = True, flatten: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Loads MNIST (or any dataset in MNIST's IDX layout) from files already on disk.

    Looks in ``directory`` for the standard file names, each raw or gzipped
    (``.gz``): ``train-images-idx3-ubyte`` and ``train-labels-idx1-ubyte`` for
    ``split="train"``; ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte`` for
    ``split="test"``. Nothing is ever downloaded. Fashion-MNIST uses the same names, so it
    loads the same way.

    Args:
      directory: folder holding the IDX files.
      split: ``"train"`` or ``"test"``.
      dtype: dtype of the returned images (default float32).
      normalize: if True, divide the uint8 pixels by 255 so they lie in [0, 1]; needs a
        floating ``dtype`` and a uint8 image file. If False, the raw values are returned in
        ``dtype``.
      flatten: if True, images have shape ``(N, H * W)`` instead of ``(N, H, W)``.

    Returns:
      ``(images, labels)``: numpy arrays of shapes ``(N, H, W)`` (or ``(N, H * W)``) and
      ``(N,)``, labels int32.

    Raises:
      FileNotFoundError: a file is missing; the message names the directory and the names
        looked for.
      ValueError: a file is not valid IDX, images are not 3-d or labels not 1-d, or the
        two files disagree on the number of examples.

    Example:
      >>> import os, tempfile
      >>> from nanofn.data import load_mnist
      >>> try:
      ...     load_mnist(tempfile.mkdtemp(), "test")
      ... except FileNotFoundError as e:
      ...     print("t10k-images-idx3-ubyte.gz" in str(e))
      True
    """
    if split not in _MNIST_NAMES:
        raise ValueError(f"load_mnist: split must be 'train' or 'test', got {split!r}")
    dtype = np.dtype(dtype)
    if normalize and not np.issubdtype(dtype, np.floating):
        raise ValueError(f"load_mnist: normalize=True scales pixels into [0, 1], which needs a "
                         f"floating dtype, got dtype={dtype}; pass a float dtype or "
                         "normalize=False for the raw values")
    directory = os.fspath(directory)
    paths = []
    for stem in _MNIST_NAMES[split]:
        found = _find(directory, stem)
        if found is None:
            raise FileNotFoundError(
                f"load_mnist: no {stem!r} or {stem + '.gz'!r} in directory {directory!r} "
                f"(split={split!r}); put the MNIST IDX files there (nanofn does not download)")
        paths.append(found)
    images, labels = read_idx(paths[0]), read_idx(paths[1])
    if images.ndim != 3:
        raise ValueError(f"load_mnist: {paths[0]!r} holds an array of shape {images.shape}, "
                         "expected 3-d images (N, H, W)")
    if labels.ndim != 1:
        raise ValueError(f"load_mnist: {paths[1]!r} holds an array of shape {labels.shape}, "
                         "expected 1-d labels (N,)")
    if images.shape[0] != labels.shape[0]:
        raise ValueError(f"load_mnist: {paths[0]!r} has {images.shape[0]} images but "
                         f"{paths[1]!r} has {labels.shape[0]} labels; the files do not belong "
                         "together")
    if normalize and images.dtype != np.uint8:
        raise ValueError(f"load_mnist: normalize=True divides uint8 pixels by 255, but "
                         f"{paths[0]!r} holds {images.dtype} values; pass normalize=False")
    x = images.astype(dtype)
    if normalize:
        x /= dtype.type(255)
    if flatten:
        x = x.reshape(x.shape[0], -1)
    return x, labels.astype(np.int32)
