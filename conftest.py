"""Doctests of the modules that wrap an optional extra run only where it is installed.

`python -m pytest` collects the doctests of every module under nanofn/ (pyproject's
testpaths). `nanofn.onnx` and the safetensors functions need packages that only their
extras install (`pip install "nanofn[onnx,safetensors]"`); on a machine with just
`[test]`, their doctests are skipped, saying which package is missing. CI installs every
extra (`.ci/run`), so there they run.
"""

import importlib.util

import pytest

EXTRAS = {  # module file -> (the packages its doctests import, the extra that installs them)
    "onnx.py": (("onnx", "onnxruntime"), "onnx"),
    "_safetensors.py": (("safetensors",), "safetensors"),
}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if not isinstance(item, pytest.DoctestItem):
            continue
        needs = EXTRAS.get(item.path.name) if item.path.parent.name == "nanofn" else None
        missing = [p for p in needs[0] if importlib.util.find_spec(p) is None] if needs else []
        if missing:
            item.add_marker(pytest.mark.skip(
                reason=f"needs {', '.join(missing)}: pip install 'nanofn[{needs[1]}]'"))
