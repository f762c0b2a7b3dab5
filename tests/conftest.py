"""Shared test configuration: a deterministic hypothesis profile.

The "sksoftmax" profile is loaded unless ``HYPOTHESIS_PROFILE`` names another
one (e.g. ``HYPOTHESIS_PROFILE=thorough`` for a longer randomised search), or
pytest's ``--hypothesis-profile=thorough`` does (the long run of test_fuzz.py).
"""

import os
import warnings

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "sksoftmax",
    derandomize=True,  # the same examples on every run and machine
    deadline=None,  # no timing assertions; the CPU is shared
    max_examples=30,
    database=None,  # nothing written into the repository
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "thorough",
    deadline=None,
    max_examples=1000,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "sksoftmax"))


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_makereport(item, call):
    """Import hypothesis' patch writer quietly before it reports a failing example.

    It imports libcst, which can emit a DeprecationWarning that the
    ``error::DeprecationWarning`` filter would turn into an INTERNALERROR that
    hides the real failure.
    """
    if call.when == "call" and call.excinfo is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            try:
                import hypothesis.extra._patching  # noqa: F401
            except ImportError:
                pass


@pytest.fixture
def blas_single_thread():
    """Run the test with one BLAS thread.

    The matrices in these tests are tiny; on a busy machine a multi-threaded
    BLAS spends most of its time waiting for its threads (a 0.2 s
    LogisticRegression fit on digits was measured at 10 s). One thread also
    makes floating-point reductions independent of the machine's core count.
    """
    threadpoolctl = pytest.importorskip("threadpoolctl")
    with threadpoolctl.threadpool_limits(limits=1, user_api="blas"):
        yield


@pytest.fixture(autouse=True)
def _no_pending_ctrl_c():
    """Each test is a new command: a Ctrl-C one test sent is not pending in the next.

    (See sksoftmax._softmax_regressor._PendingCtrlC.)
    """
    yield
    from sksoftmax._softmax_regressor import _pending_ctrl_c

    _pending_ctrl_c.clear()
