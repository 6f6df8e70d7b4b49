"""Every code block in the docs runs, so the docs cannot drift from the code.

In README.md and docs/**/*.md, fenced blocks are run page by page, in order, in one
namespace per page (a later block may use what an earlier one defined):

* ```python blocks are executed;
* ```pycon blocks are doctests: each `>>>` line runs and its shown output is checked;
* ```python notest marks a block that is deliberately partial (kept few; counted below).

Other fences (bash, text, plain) are not Python and are not run. The site itself is
built by `mkdocs build --strict` in CI (`.ci/run`), and the API reference is checked to
list every public name (test_api_reference_lists_every_public_name).
"""

import doctest
import pathlib
import re
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md"] + sorted(p for p in (ROOT / "docs").rglob("*.md")
                                      if "hooks" not in p.parts)
FENCE = re.compile(r"^```([\w-]*)([^\n]*)\n(.*?)^```\s*$", re.M | re.S)


def blocks(page):
    for m in FENCE.finditer(page.read_text()):
        lang, rest, body = m.group(1), m.group(2).strip(), m.group(3)
        line = page.read_text()[: m.start()].count("\n") + 2
        yield lang, rest, body, line


def _run_page(page, tmp_path):
    ns = {"__name__": f"docs_{page.stem}"}
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS)
    parser = doctest.DocTestParser()
    ran = 0
    for lang, rest, body, line in blocks(page):
        if lang == "python" and body.lstrip().startswith(">>>"):
            lang = "pycon"  # a doctest session written in a python fence
        if lang == "python" and "notest" not in rest:
            code = compile(body, f"{page.name}:{line}", "exec")
            exec(code, ns)  # noqa: S102
            ran += 1
        elif lang == "pycon":
            test = parser.get_doctest(body, ns, f"{page.name}:{line}", str(page), line)
            report = []
            result = runner.run(test, out=report.append, clear_globs=False)
            assert result.failed == 0, "".join(report)
            ns.update(test.globs)  # DocTest ran on a copy of the namespace
            ran += 1
    return ran


# pages whose blocks use an optional extra: run where it is installed (CI installs them all)
PAGE_EXTRAS = {"deploy.md": ("onnx", "onnxruntime", "safetensors")}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_code_blocks_run(page, tmp_path, monkeypatch):
    for package in PAGE_EXTRAS.get(page.name, ()):
        pytest.importorskip(package, reason=f"{page.name} needs the {package} extra")
    monkeypatch.chdir(tmp_path)  # blocks that write files write them here
    _run_page(page, tmp_path)


def test_partial_blocks_are_few():
    counts = {"run": 0, "notest": 0}
    for page in PAGES:
        for lang, rest, _, _ in blocks(page):
            if lang in ("python", "pycon"):
                counts["notest" if "notest" in rest else "run"] += 1
    assert counts["run"] >= 20
    assert counts["notest"] <= max(3, counts["run"] // 10), counts


def test_api_reference_lists_every_public_name():
    sys.path.insert(0, str(ROOT / "docs" / "hooks"))
    try:
        import api
    finally:
        sys.path.pop(0)
    pages = api.api_pages()
    for modname in ("nanofn", "nanofn.numpy", "nanofn.nn", "nanofn.optim", "nanofn.random",
                    "nanofn.tree", "nanofn.testing", "nanofn.scipy.special", "nanofn.data",
                    "nanofn.serialization", "nanofn.debug", "nanofn.viz", "nanofn.profiler"):
        assert f"api/{modname}.md" in pages, modname
    import importlib
    for path, (modname, text) in pages.items():
        module = importlib.import_module(modname)
        documented = set(re.findall(rf"^::: {re.escape(modname)}\.(\w+)$", text, re.M))
        documented |= set(re.findall(r"^### `(\w+)`$", text, re.M))
        missing = [n for n in api.public_names(module) if n not in documented]
        assert not missing, f"{modname}: not in the API reference: {missing}"


@pytest.mark.parametrize("modname, names", [
    ("nanofn", ["grad", "jit", "vmap", "nn", "optim"]),
    ("nanofn.numpy", ["sin", "matmul", "where", "linalg"]),
    ("nanofn.ops", ["scan", "cond", "dot_general"]),
    ("nanofn.random", ["key", "split", "normal"]),
    ("nanofn.nn", ["Dense", "relu", "summary"]),
    ("nanofn.optim", ["adam", "chain"]),
    ("nanofn.tree", ["map", "flatten"]),
])
def test_help_and_dir_list_the_functions(modname, names):
    import importlib
    import pydoc
    module = importlib.import_module(modname)
    text = pydoc.render_doc(module, renderer=pydoc.plaintext)
    for name in names:
        assert name in dir(module), (modname, name)
        if not isinstance(getattr(module, name), type(module)):
            assert f"{name}(" in text or f"{name} =" in text or f"class {name}" in text, \
                (modname, name)
