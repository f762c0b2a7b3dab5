"""Root pytest configuration: what the doctests may import, and where they write.

sksoftmax/onnx.py imports skl2onnx (the ``onnx`` extra) at import time, by
design, and docs/persistence.rst uses skops, skl2onnx and onnxruntime; without
them their doctest collection would fail rather than skip (tests/test_onnx.py
and tests/test_persistence.py skip by themselves).

SCIPY_ARRAY_API=1 is set here, before anything imports scipy: scikit-learn's
array-API checks (tests/test_common.py, tests/test_array_api.py) need scipy's
array-API mode, which scipy reads once, when it is first imported.
"""

import importlib.util
import os
import sys

if os.environ.get("SCIPY_ARRAY_API") != "1":
    if "scipy" in sys.modules:  # a plugin imported it first: the setting would not take
        raise RuntimeError(
            "scipy was imported before the root conftest.py could set SCIPY_ARRAY_API=1; "
            "run the tests with SCIPY_ARRAY_API=1 in the environment."
        )
    os.environ["SCIPY_ARRAY_API"] = "1"

import pytest


def _missing(*modules):
    return not all(importlib.util.find_spec(module) for module in modules)


collect_ignore = []
if _missing("skl2onnx"):
    collect_ignore.append("sksoftmax/onnx.py")
if _missing("skops", "skl2onnx", "onnxruntime"):
    collect_ignore.append("docs/persistence.rst")


@pytest.fixture(autouse=True)
def _doctests_write_into_a_temporary_folder(request, tmp_path, monkeypatch):
    """The documentation's examples save files ("model.skops") where they run."""
    if type(request.node).__name__ == "DoctestItem":
        monkeypatch.chdir(tmp_path)
