"""mkdocs hook: the API reference, generated from the live modules at build time.

For each public module of nanofn that imports, one page lists every public name (its
`__all__`, or else the public functions and classes defined in nanofn), grouped by the
private module that defines them (the group's title is that module's docstring's first
line), each rendered by mkdocstrings from its docstring and followed by the JAX/optax
name it mirrors (from `reference_names.json`, recorded from the installed JAX and optax
by `record_reference_names.py`). `api_pages()` is also what the test that every public
name is documented reads.
"""

from __future__ import annotations

import importlib
import inspect
import json
import pathlib
import types

# (module, the JAX/optax modules it mirrors, in order of preference)
MODULES = [
    ("nanofn", ["jax"]),
    ("nanofn.numpy", ["jax.numpy"]),
    ("nanofn.numpy.linalg", ["jax.numpy.linalg"]),
    ("nanofn.numpy.fft", ["jax.numpy.fft"]),
    ("nanofn.lax", ["jax.lax", "jax.ops"]),
    ("nanofn.lax.linalg", ["jax.lax.linalg"]),
    ("nanofn.random", ["jax.random"]),
    ("nanofn.nn", ["jax.nn", "jax.example_libraries.stax"]),
    ("nanofn.nn.initializers", ["jax.nn.initializers"]),
    ("nanofn.nn.losses", ["optax.losses", "optax"]),
    ("nanofn.optim", ["optax", "optax.transforms", "optax.schedules"]),
    ("nanofn.optim.losses", ["optax.losses", "optax"]),
    ("nanofn.optim.tree", ["optax.tree"]),
    ("nanofn.optim.tree_utils", ["optax.tree_utils"]),
    ("nanofn.optim.transforms", ["optax.transforms"]),
    ("nanofn.optim.schedules", ["optax.schedules"]),
    ("nanofn.optim.contrib", ["optax.contrib"]),
    ("nanofn.optim.projections", ["optax.projections"]),
    ("nanofn.optim.second_order", ["optax.second_order"]),
    ("nanofn.optim.assignment", ["optax.assignment"]),
    ("nanofn.optim.perturbations", ["optax.perturbations"]),
    ("nanofn.optim.microbatching", ["optax.microbatching"]),
    ("nanofn.tree", ["jax.tree"]),
    ("nanofn.tree_util", ["jax.tree_util"]),
    ("nanofn.testing", ["jax.test_util"]),
    ("nanofn.test_util", ["jax.test_util"]),
    ("nanofn.custom_derivatives", ["jax.custom_derivatives"]),
    ("nanofn.custom_batching", ["jax.custom_batching"]),
    ("nanofn.scipy.special", ["jax.scipy.special"]),
    ("nanofn.scipy.stats", ["jax.scipy.stats"]),
    ("nanofn.scipy.linalg", ["jax.scipy.linalg"]),
    ("nanofn.scipy.fft", ["jax.scipy.fft"]),
    ("nanofn.scipy.signal", ["jax.scipy.signal"]),
    ("nanofn.scipy.ndimage", ["jax.scipy.ndimage"]),
    ("nanofn.scipy.interpolate", ["jax.scipy.interpolate"]),
    ("nanofn.image", ["jax.image"]),
    ("nanofn.scipy.optimize", ["jax.scipy.optimize"]),
    ("nanofn.scipy.integrate", ["jax.scipy.integrate"]),
    ("nanofn.scipy.sparse.linalg", ["jax.scipy.sparse.linalg"]),
    ("nanofn.scipy.cluster.vq", ["jax.scipy.cluster.vq"]),
    ("nanofn.scipy.spatial.transform", ["jax.scipy.spatial.transform"]),
    ("nanofn.experimental.ode", ["jax.experimental.ode"]),
    ("nanofn.experimental.checkify", ["jax.experimental.checkify"]),
    ("nanofn.example_libraries.stax", ["jax.example_libraries.stax"]),
    ("nanofn.example_libraries.optimizers", ["jax.example_libraries.optimizers"]),
    ("nanofn.distributed", ["jax.distributed"]),
    ("nanofn.sharding", ["jax.sharding"]),
    ("nanofn.experimental.shard_map", []),  # JAX's deprecated home: no names to compare
    ("nanofn.experimental.mesh_utils", ["jax.experimental.mesh_utils"]),
    ("nanofn.experimental.jet", ["jax.experimental.jet"]),
    ("nanofn.experimental.multihost_utils", ["jax.experimental.multihost_utils"]),
    ("nanofn.experimental.compilation_cache.compilation_cache",
     ["jax.experimental.compilation_cache.compilation_cache"]),
    ("nanofn.experimental.pjit", ["jax.experimental.pjit"]),
    ("nanofn.experimental.sparse", ["jax.experimental.sparse"]),
    ("nanofn.errors", ["jax.errors"]),
    ("nanofn.dtypes", ["jax.dtypes"]),
    ("nanofn.flatten_util", ["jax.flatten_util"]),
    ("nanofn.typing", ["jax.typing"]),
    ("nanofn.ad_checkpoint", ["jax"]),
    ("nanofn.checkpoint_policies", []),
    ("nanofn.data", []),
    ("nanofn.serialization", []),
    ("nanofn.debug", ["jax.debug"]),
    ("nanofn.viz", []),
    ("nanofn.profiler", ["jax.profiler"]),
    ("nanofn.monitoring", ["jax.monitoring"]),
    ("nanofn.dlpack", ["jax.dlpack"]),
    ("nanofn.stages", ["jax.stages"]),
    ("nanofn.warmup", []),
    ("nanofn.onnx", []),
    ("nanofn.core", ["jax.core", "jax.extend.core"]),
    ("nanofn.extend", ["jax.extend"]),
    ("nanofn.extend.core", ["jax.extend.core"]),
    ("nanofn.interpreters", []),  # only submodules
    ("nanofn.interpreters.ad", ["jax.interpreters.ad"]),
    ("nanofn.interpreters.batching", ["jax.interpreters.batching"]),
    ("nanofn.interpreters.mlir", ["jax.interpreters.mlir"]),
]

HERE = pathlib.Path(__file__).resolve().parent


def _reference_names():
    path = HERE / "reference_names.json"
    return json.loads(path.read_text()) if path.exists() else {}


def public_names(module) -> list[str]:
    """The names a module documents: `__all__`, or its public nanofn functions/classes."""
    names = getattr(module, "__all__", None)
    if names is None:
        names = []
        for n in dir(module):
            if n.startswith("_"):
                continue
            obj = getattr(module, n)
            if isinstance(obj, types.ModuleType):
                continue
            if (getattr(obj, "__module__", "") or "").startswith("nanofn"):
                names.append(n)
    return sorted(set(names))


def _group_title(obj, module) -> str:
    if isinstance(obj, types.ModuleType):
        return "Submodules"
    home = getattr(obj, "__module__", None) or module.__name__
    if home == module.__name__ or not home.startswith("nanofn"):
        return "Classes" if inspect.isclass(obj) else "Functions and values"
    doc = (importlib.import_module(home).__doc__ or "").strip().splitlines()
    title = doc[0].rstrip(".:") if doc else home
    return title if len(title) <= 90 else title[:87] + "..."


def _documentable(obj) -> bool:
    """Whether mkdocstrings can render `obj` from nanofn's source: a function or class
    that nanofn defines."""
    home = getattr(obj, "__module__", None) or ""
    if "<" in getattr(obj, "__qualname__", ""):  # a lambda or closure: no page of its own
        return False
    return home.startswith("nanofn") and (callable(obj) or inspect.isclass(obj))


def _describe(obj) -> str:
    if inspect.isclass(obj) or callable(obj):
        home = getattr(obj, "__module__", "") or ""
        return f"{home + '.' if home else ''}{getattr(obj, '__qualname__', repr(obj))}"
    text = repr(obj)
    return text if len(text) <= 80 else text[:77] + "..."


def _mirror_line(name, mirrors, ref) -> str:
    for m in mirrors:
        if name in ref.get(m, ()):
            return f"*Mirrors* `{m}.{name}`."
    if mirrors and ref:
        return f"*nanofn's own: {', '.join('`' + m + '`' for m in mirrors)} has no `{name}`.*"
    return ""


def _submodule_entries(sub) -> list[str]:
    """The documented functions of a submodule without a page of its own (a distribution of
    `nanofn.scipy.stats`, say)."""
    lines = []
    for fn in public_names(sub):
        if _documentable(getattr(sub, fn, None)):
            lines += [f"::: {sub.__name__}.{fn}", "    options:", "      heading_level: 4", ""]
    return lines


def api_pages() -> dict[str, tuple[str, str]]:
    """`{page path: (module name, markdown)}` for every public module that imports."""
    ref = _reference_names()
    pages = {}
    for modname, mirrors in MODULES:
        try:
            module = importlib.import_module(modname)
        except ImportError:  # a module whose optional extra is missing, or not built yet
            continue
        groups: dict[str, list[str]] = {}
        for name in public_names(module):
            obj = getattr(module, name, None)
            groups.setdefault(_group_title(obj, module), []).append(name)
        first = (module.__doc__ or "").strip().split("\n\n")[0]
        lines = [f"# `{modname}`", "", first, ""]
        if mirrors:
            lines += [f"Mirrors {', '.join('`' + m + '`' for m in mirrors)}; each entry names "
                      "its counterpart, and its docstring says where it differs.", ""]
        for title in sorted(groups, key=lambda t: (t == "Submodules", t)):
            lines += [f"## {title}", ""]
            for name in groups[title]:
                obj = getattr(module, name, None)
                if isinstance(obj, types.ModuleType):
                    lines += [f"### `{name}`", "", f"The module `{obj.__name__}`.", ""]
                    if obj.__name__ not in dict(MODULES):  # no page of its own: its functions here
                        mirror = _mirror_line(name, mirrors, ref)
                        lines += ([mirror, ""] if mirror else []) + _submodule_entries(obj)
                    continue
                if not _documentable(obj):  # a value, or an alias of something outside nanofn
                    lines += [f"### `{name}`", "", f"`{_describe(obj)}`", ""]
                    mirror = _mirror_line(name, mirrors, ref)
                    lines += [mirror, ""] if mirror else []
                    continue
                lines += [f"::: {modname}.{name}", "    options:", "      heading_level: 3", ""]
                mirror = _mirror_line(name, mirrors, ref)
                if mirror:
                    lines += [mirror, ""]
        pages[f"api/{modname}.md"] = (modname, "\n".join(lines) + "\n")
    return pages


# ----------------------------------------------------------------- mkdocs hooks

_PAGES: dict = {}


def on_config(config, **kwargs):
    _PAGES.clear()
    _PAGES.update(api_pages())
    nav = config.get("nav") or []
    for entry in nav:
        if isinstance(entry, dict) and "API reference" in entry:
            entry["API reference"] = [{mod: path} for path, (mod, _) in _PAGES.items()]
    return config


def on_files(files, config, **kwargs):
    from mkdocs.structure.files import File
    for path, (_, text) in _PAGES.items():
        files.append(File.generated(config, path, content=text))
    return files
