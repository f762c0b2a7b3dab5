"""Root pytest configuration: what --doctest-modules may import.

sksoftmax/onnx.py imports skl2onnx (the ``onnx`` extra) at import time, by
design; without the extra its doctest collection would be an import error
rather than a skip (tests/test_onnx.py skips by itself).
"""

import importlib.util

collect_ignore = [] if importlib.util.find_spec("skl2onnx") else ["sksoftmax/onnx.py"]
