"""Momentum on CSR, compiled: the lazy epoch against the numpy epoch's dense update.

The numpy epoch moves every weight and velocity at every batch (the reference);
the compiled one takes each feature's missed steps just in time, as one 2 x 2
map of its (weight, velocity) pairs from a table of products of step maps.
Every test compares the two on the same inputs.
"""

import copy

import numpy as np
import pytest
from numpy.testing import assert_allclose
from test_engine import make_problem

import sksoftmax._engine as engine_module
from sksoftmax import SoftmaxRegressor
from sksoftmax._engine import DivergenceError, EpochEngine
from sksoftmax._optim import SGDOptimizer
from sksoftmax._penalty import Penalty

numba = pytest.importorskip("numba")

RTOL = {np.float64: 1e-9, np.float32: 2e-4}


def _force(monkeypatch, compiled, chunk_rows=None):
    if compiled:
        monkeypatch.delenv("SKSOFTMAX_NUMBA", raising=False)
        monkeypatch.setattr(engine_module, "COMPILED_MIN_SIZE", 0)
        if chunk_rows is not None:
            monkeypatch.setattr(engine_module, "COMPILED_CHUNK_ROWS", chunk_rows)
    else:
        monkeypatch.setenv("SKSOFTMAX_NUMBA", "0")


def _close(actual, expected, rtol, name):
    scale = max(1e-3, float(np.abs(expected).max(initial=0.0)))
    assert_allclose(actual, expected, rtol=rtol, atol=rtol * scale, err_msg=name)


def _epochs(monkeypatch, compiled, X, y, weights, order, coef, intercept, rule, *, n_epochs,
            batch_size, penalty, fit_intercept, offset, chunk_rows=None):  # fmt: skip
    _force(monkeypatch, compiled, chunk_rows)
    coef, intercept, rule = coef.copy(order="A"), intercept.copy(), copy.deepcopy(rule)
    engine = EpochEngine(X, coef.shape[0], batch_size)
    path = engine.path(coef, rule, None, penalty)
    losses = []
    for _ in range(n_epochs):
        loss, n_seen = engine.run_epoch(
            X, y, weights, order, coef, intercept, rule, penalty=penalty,
            fit_intercept=fit_intercept, offset=offset,
        )  # fmt: skip
        losses.append(loss)
    return path, np.array(losses), coef, intercept, rule


CASES = [
    # nesterov, schedule, n_classes, centred, fit_intercept, weighted, batch, chunk, order
    (False, "constant", 4, False, True, False, 32, None, "F"),
    (True, "constant", 3, True, True, True, 30, 64, "F"),
    (False, "optimal", 2, True, True, False, 30, None, "C"),
    (True, "optimal", 5, False, False, True, 32, 64, "F"),
    (False, "invscaling", 3, False, True, True, 7, None, "C"),
    (True, "invscaling", 4, True, True, False, 32, None, "F"),
    (False, "adaptive", 5, True, True, True, 32, 64, "F"),
    (True, "adaptive", 2, False, True, False, 30, None, "F"),
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize(
    "nesterov, schedule, n_classes, centred, fit_intercept, weighted, batch_size, chunk_rows, "
    "coef_order",
    CASES,
)
def test_compiled_momentum_matches_the_numpy_dense_update(
    monkeypatch, dtype, nesterov, schedule, n_classes, centred, fit_intercept, weighted,
    batch_size, chunk_rows, coef_order,
):  # fmt: skip
    """Three epochs sharing one optimiser: weights, intercept, both velocities, the
    loss and ``t`` equal the numpy epoch's, with warm velocities and a schedule past
    t = 0, centred or not, in one chunk or several, coef in place (F) or copied (C)."""
    X, y = make_problem(203, 40, n_classes, dtype, sparse=True, seed=5)
    rng = np.random.default_rng(5)
    n_params = 1 if n_classes == 2 else n_classes
    coef = (0.1 * rng.standard_normal((n_params, 40))).astype(dtype, order=coef_order)
    intercept = (0.1 * rng.standard_normal(n_params)).astype(dtype)
    if not fit_intercept:
        intercept[...] = 0
    weights = None
    if weighted:
        weights = rng.uniform(0.0, 3.0, 203).astype(dtype)
        weights[::11] = 0.0
    offset = np.asarray(X.mean(axis=0), dtype=dtype).ravel() if centred else None
    rule = SGDOptimizer(
        [coef, intercept], learning_rate=schedule, eta0=0.05, power_t=0.4, alpha=0.2,
        momentum=0.9, nesterov=nesterov,
    )  # fmt: skip
    rule.t = 45
    velocity = (0.1 * rng.standard_normal((n_params, 40))).astype(dtype, order=coef_order)
    rule.velocities = [velocity, np.zeros_like(intercept)]
    if fit_intercept:
        rule.velocities[1][...] = 0.1 * rng.standard_normal(n_params)
    inputs = (X, y, weights, rng.permutation(203), coef, intercept, rule)
    options = dict(
        n_epochs=3, batch_size=batch_size, penalty=Penalty(0.02), fit_intercept=fit_intercept,
        offset=offset,
    )  # fmt: skip
    expected = _epochs(monkeypatch, False, *inputs, **options)
    actual = _epochs(monkeypatch, True, *inputs, chunk_rows=chunk_rows, **options)
    assert (expected[0], actual[0]) == ("numpy", "compiled sparse momentum")
    rtol = RTOL[dtype]
    _close(actual[1], expected[1], rtol, "losses")
    _close(actual[2], expected[2], rtol, "coef")
    _close(actual[3], expected[3], rtol, "intercept")
    got, want = actual[4], expected[4]
    assert got.t == want.t == 45 + 3 * 203
    for name, a, b in zip(("coef", "intercept"), got.velocities, want.velocities, strict=True):
        assert a.dtype == dtype
        _close(a, b, rtol, f"velocity of {name}")
    assert actual[2].dtype == dtype
    assert not np.allclose(actual[2], coef)  # it trained
    if not fit_intercept:
        assert not actual[3].any()


@pytest.mark.parametrize("momentum", [0.5, 0.99])
def test_long_lags_stay_exact(monkeypatch, momentum):
    """Batches of one row, 3000 steps an epoch: a rare feature misses thousands of
    steps, whose map is a product over blocks of the table; velocities decaying as
    momentum**k must not lose their digits (an inverse of a cumulative product
    would). Constant and decreasing steps."""
    X, y = make_problem(3000, 60, 3, np.float64, sparse=True, seed=2)
    X = X.tolil()
    X[:, 50:] = 0.0
    X[::700, 50:] = 1.0  # features 50-59: five rows of 3000
    X = X.tocsr()
    coef, intercept = np.zeros((3, 60), order="F"), np.zeros(3)
    for schedule in ("constant", "invscaling"):
        rule = SGDOptimizer(
            [coef, intercept], learning_rate=schedule, eta0=0.01, power_t=0.3, alpha=0.0,
            momentum=momentum,
        )  # fmt: skip
        order = np.random.default_rng(0).permutation(3000)
        options = dict(
            n_epochs=2, batch_size=1, penalty=Penalty(0.05), fit_intercept=True, offset=None
        )
        expected = _epochs(monkeypatch, False, X, y, None, order, coef, intercept, rule, **options)
        actual = _epochs(monkeypatch, True, X, y, None, order, coef, intercept, rule, **options)
        assert actual[0] == "compiled sparse momentum"
        _close(actual[2], expected[2], 1e-9, "coef")
        _close(actual[4].velocities[0], expected[4].velocities[0], 1e-9, "velocity")
        assert np.abs(expected[2][:, 50:]).max() > 1e-4  # the rare features moved


def test_divergence_and_stop_are_those_of_the_numpy_epoch(monkeypatch):
    """The same DivergenceError, with the weights as far as they got written back;
    and Ctrl-C polled between chunks, the weights of the batches taken kept."""
    X, y = make_problem(203, 40, 3, np.float64, sparse=True)
    coef0 = np.zeros((3, 40), order="F")
    results = []
    for compiled in (False, True):
        _force(monkeypatch, compiled)
        coef, intercept = coef0.copy(order="F"), np.zeros(3)
        rule = SGDOptimizer(
            [coef, intercept], learning_rate="constant", eta0=1e20, power_t=0.5, alpha=0.0,
            momentum=0.9,
        )  # fmt: skip
        with pytest.raises(DivergenceError) as error:
            EpochEngine(X, 3, 32).run_epoch(
                X, y, None, None, coef, intercept, rule, alpha=0.0, fit_intercept=True
            )
        results.append((str(error.value), rule.t, coef, rule.velocities[0]))
    assert results[0][:2] == results[1][:2]
    assert_allclose(results[1][2], results[0][2], rtol=1e-10)
    assert_allclose(results[1][3], results[0][3], rtol=1e-10)
    assert np.abs(results[1][2]).max() > 1e10

    _force(monkeypatch, True, chunk_rows=64)
    stopped = []
    for stop in (False, True):
        coef, intercept = coef0.copy(order="F"), np.zeros(3)
        rule = SGDOptimizer(
            [coef, intercept], learning_rate="constant", eta0=0.1, power_t=0.5, alpha=0.01,
            momentum=0.9,
        )  # fmt: skip
        _, n_seen = EpochEngine(X, 3, 32).run_epoch(
            X, y, None, None, coef, intercept, rule, alpha=0.01, fit_intercept=True,
            stop_requested=lambda stop=stop: stop,
        )  # fmt: skip
        stopped.append((n_seen, rule.t, coef))
    assert stopped[1][:2] == (64, 64)
    assert stopped[0][:2] == (203, 203)
    assert np.abs(stopped[1][2]).max() > 0


@pytest.mark.parametrize("options", [{"momentum": 0.9}, {"momentum": 0.8, "nesterov": True}])
def test_estimator_fit_and_partial_fit_match_numpy(monkeypatch, options):
    """Through the estimator (centred CSR, the validation split of early stopping
    off): fit, then partial_fit continuing the velocities, compiled as numpy."""
    X, y = make_problem(400, 60, 4, np.float64, sparse=True, seed=3)
    models = []
    for compiled in (False, True):
        _force(monkeypatch, compiled)
        model = SoftmaxRegressor(
            solver="sgd", max_iter=3, tol=None, random_state=0, batch_size=32, **options
        ).fit(X, y)
        model.partial_fit(X[:150], y[:150])
        models.append(model)
    numpy_model, compiled_model = models
    _close(compiled_model.coef_, numpy_model.coef_, 1e-9, "coef_")
    _close(compiled_model.intercept_, numpy_model.intercept_, 1e-9, "intercept_")
    assert_allclose(compiled_model.loss_curve_, numpy_model.loss_curve_, rtol=1e-9)
    assert compiled_model.t_ == numpy_model.t_


def test_estimator_takes_the_compiled_epoch(monkeypatch):
    """Momentum on CSR loads the kernels and runs the compiled epoch; with averaging
    too, or an L1 part, the numpy epoch (which the kernels do not implement)."""
    X, y = make_problem(203, 40, 3, np.float64, sparse=True)
    _force(monkeypatch, True)
    paths = []
    original = EpochEngine.path

    def path(self, *args, **kwargs):
        paths.append(original(self, *args, **kwargs))
        return paths[-1]

    monkeypatch.setattr(EpochEngine, "path", path)
    for options, expected in [
        ({"momentum": 0.9}, "compiled sparse momentum"),
        ({"momentum": 0.9, "average": True}, "numpy"),
        ({"momentum": 0.9, "penalty": "elasticnet"}, "numpy"),
    ]:
        paths.clear()
        SoftmaxRegressor(solver="sgd", max_iter=2, tol=None, **options).fit(X, y)
        assert set(paths) == {expected}, options
