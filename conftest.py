"""Root pytest configuration: what the doctests may import, and where they write.

sksoftmax/onnx.py imports skl2onnx (the ``onnx`` extra) at import time, by
design, and docs/persistence.rst uses skops, skl2onnx and onnxruntime; without
them their doctest collection would fail rather than skip (tests/test_onnx.py
and tests/test_persistence.py skip by themselves).
"""

import importlib.util

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
