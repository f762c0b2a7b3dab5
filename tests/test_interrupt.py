"""Ctrl-C in a loop of fits, with real SIGINTs sent to a subprocess.

The first Ctrl-C ends the fit it lands in; a second one, in a later fit of the
same loop, must stop the loop (sksoftmax._softmax_regressor._PendingCtrlC).
"""

import os
import signal
import subprocess
import sys
import textwrap
import threading

import pytest

pytestmark = pytest.mark.skipif(
    sys.platform == "win32", reason="SIGINT cannot be sent to a subprocess on Windows"
)

# A grid search of 4 alphas x cv=2 whose fits would each run for hours (tol=None):
# only Ctrl-C ends them. verbose=1 prints "Epoch 1," as each fit starts.
_GRID_SEARCH = textwrap.dedent(
    """
    import numpy as np
    from sklearn.model_selection import GridSearchCV
    from sksoftmax import SoftmaxRegressor, _engine

    rng = np.random.default_rng(0)
    n_rows = {n_rows}
    X = rng.standard_normal((n_rows, 64))
    y = np.argmax(X[:, :3], axis=1)
    # Warm-up (compiles the kernels when numba is on): the engine each fit will use.
    SoftmaxRegressor(max_iter=1, tol=None).fit(X[: n_rows // 2], y[: n_rows // 2])
    print("compiled" if _engine._kernels is not None else "numpy", flush=True)
    search = GridSearchCV(
        SoftmaxRegressor(max_iter=10**7, tol=None, verbose=1, random_state=0),
        {{"alpha": [1e-4, 1e-3, 1e-2, 1e-1]}},
        cv=2,
        n_jobs=1,
    )
    search.fit(X, y)
    print("grid search returned", flush=True)
    """
)


def _run_until(proc, predicate, lines):
    """Read stdout lines into ``lines`` until ``predicate(line)``; the line, or None at EOF."""
    for line in proc.stdout:
        lines.append(line)
        if predicate(line):
            return line
    return None


def _start(args, env_extra):
    env = dict(os.environ, **env_extra)
    proc = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    watchdog = threading.Timer(300, proc.kill)  # never hang the suite
    watchdog.start()
    return proc, watchdog


@pytest.mark.parametrize(
    "engine, n_rows, numba",
    [("numpy", 2000, "0"), ("compiled", 2**15, "1")],  # cv folds of 2**14 x 64 = 2**20
)
def test_second_ctrl_c_stops_a_grid_search(engine, n_rows, numba):
    if numba == "1":
        pytest.importorskip("numba")
    code = _GRID_SEARCH.format(n_rows=n_rows)
    proc, watchdog = _start([sys.executable, "-c", code], {"SKSOFTMAX_NUMBA": numba})
    lines = []
    try:
        assert _run_until(proc, lambda line: line.strip() in ("numpy", "compiled"), lines)
        assert lines[-1].strip() == engine
        # The first press, in the first fit, ends that fit only ...
        assert _run_until(proc, lambda line: line.startswith("Epoch 1,"), lines)
        proc.send_signal(signal.SIGINT)
        # ... and the grid search goes on with the next fit ...
        assert _run_until(proc, lambda line: line.startswith("Epoch 1,"), lines)
        proc.send_signal(signal.SIGINT)
        # ... where the second press stops everything: no third fit starts.
        third = _run_until(proc, lambda line: line.startswith("Epoch 1,"), lines)
        if third is not None:
            proc.kill()
        stderr = proc.stderr.read()
        proc.wait()
    finally:
        watchdog.cancel()
        proc.kill()
    assert third is None, "a third fit started after the second Ctrl-C"
    assert "grid search returned" not in "".join(lines)
    assert proc.returncode != 0
    assert "KeyboardInterrupt: a second Ctrl-C" in stderr, stderr[-2000:]
    assert stderr.count("Training interrupted by user") == 1, stderr[-2000:]
