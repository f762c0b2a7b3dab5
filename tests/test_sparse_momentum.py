"""Momentum on CSR, compiled: the lazy epoch against the numpy epoch's dense update.

The numpy epoch moves every weight, velocity and average at every batch (the
reference); the compiled one takes each feature's missed steps just in time, as
one 3 x 3 map of its (weight, velocity, average) triples from a table of
products of step maps.
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
    # nesterov, schedule, n_classes, centred, fit_intercept, weighted, batch, chunk, order,
    # average (False, True, or from t = 300: copying, then averaging, in the first epoch)
    (False, "constant", 4, False, True, False, 32, None, "F", False),
    (True, "constant", 3, True, True, True, 30, 64, "F", 300),
    (False, "optimal", 2, True, True, False, 30, None, "C", True),
    (True, "optimal", 5, False, False, True, 32, 64, "F", False),
    (False, "invscaling", 3, False, True, True, 7, None, "C", 300),
    (True, "invscaling", 4, True, True, False, 32, None, "F", True),
    (False, "adaptive", 5, True, True, True, 32, 64, "F", False),
    (True, "adaptive", 2, False, True, False, 30, None, "F", True),
    (False, "constant", 3, True, False, False, 32, None, "F", 300),
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize(
    "nesterov, schedule, n_classes, centred, fit_intercept, weighted, batch_size, chunk_rows, "
    "coef_order, average",
    CASES,
)
def test_compiled_momentum_matches_the_numpy_dense_update(
    monkeypatch, dtype, nesterov, schedule, n_classes, centred, fit_intercept, weighted,
    batch_size, chunk_rows, coef_order, average,
):  # fmt: skip
    """Three epochs sharing one optimiser: weights, intercept, both velocities (and
    averages), the loss, ``t`` and ``n_averaged`` equal the numpy epoch's, with warm
    velocities and a schedule past t = 0, centred or not, in one chunk or several,
    coef in place (F) or copied (C)."""
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
        momentum=0.9, nesterov=nesterov, average=average,
    )  # fmt: skip
    rule.t = 45
    velocity = (0.1 * rng.standard_normal((n_params, 40))).astype(dtype, order=coef_order)
    # Without a fitted intercept too: its gradient is 0, its velocity decays (the
    # numpy epoch used to take the step rule's scratch for that gradient).
    rule.velocities = [velocity, (0.1 * rng.standard_normal(n_params)).astype(dtype)]
    if average is True:  # mid-training: an average of earlier iterates
        rule.averages[0] += (0.05 * rng.standard_normal((n_params, 40))).astype(dtype)
        if fit_intercept:
            rule.averages[1] += (0.05 * rng.standard_normal(n_params)).astype(dtype)
        rule.n_averaged = 3
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
    assert got.n_averaged == want.n_averaged
    if average is not False:
        assert 0 < want.n_averaged < 3 * 203  # 300: both phases in the first epoch
    buffers = [("velocity", got.velocities, want.velocities)]
    if average is not False:
        buffers.append(("average", got.averages, want.averages))
    for kind, got_buffers, want_buffers in buffers:
        for name, a, b in zip(("coef", "intercept"), got_buffers, want_buffers, strict=True):
            assert a.dtype == dtype
            _close(a, b, rtol, f"{kind} of {name}")
    if average is not False:
        assert not np.allclose(got.averages[0], actual[2])  # an average, not the iterate
    assert actual[2].dtype == dtype
    assert not np.allclose(actual[2], coef)  # it trained


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
    # What the stopped epoch kept is the numpy epoch over its first 64 rows.
    _force(monkeypatch, False)
    coef, intercept = coef0.copy(order="F"), np.zeros(3)
    rule = SGDOptimizer(
        [coef, intercept], learning_rate="constant", eta0=0.1, power_t=0.5, alpha=0.01,
        momentum=0.9,
    )  # fmt: skip
    EpochEngine(X, 3, 32).run_epoch(
        X, y, None, np.arange(64), coef, intercept, rule, alpha=0.01, fit_intercept=True
    )
    _close(stopped[1][2], coef, 1e-9, "coef after the stop")


@pytest.mark.parametrize(
    "options",
    [{"momentum": 0.9}, {"momentum": 0.8, "nesterov": True, "average": 500}],
)
def test_estimator_fit_and_partial_fit_match_numpy(monkeypatch, options):
    """Through the estimator (centred CSR, the validation split of early stopping
    off): fit, then partial_fit continuing the velocities, compiled as numpy."""
    X, y = make_problem(400, 60, 4, np.float64, sparse=True, seed=3)
    models, paths = [], []
    original = EpochEngine.path

    def path(self, *args, **kwargs):
        paths.append(original(self, *args, **kwargs))
        return paths[-1]

    monkeypatch.setattr(EpochEngine, "path", path)
    for compiled in (False, True):
        _force(monkeypatch, compiled)
        model = SoftmaxRegressor(
            solver="sgd", max_iter=3, tol=None, random_state=0, batch_size=32, **options
        ).fit(X, y)
        model.partial_fit(X[:150], y[:150])
        models.append(model)
    numpy_model, compiled_model = models
    assert set(paths) == {"numpy", "compiled sparse momentum"}
    _close(compiled_model.coef_, numpy_model.coef_, 1e-9, "coef_")
    _close(compiled_model.intercept_, numpy_model.intercept_, 1e-9, "intercept_")
    assert_allclose(compiled_model.loss_curve_, numpy_model.loss_curve_, rtol=1e-9)
    assert compiled_model.t_ == numpy_model.t_
    for name in ("velocities", "averages"):
        got, want = getattr(compiled_model._optimizer, name), getattr(numpy_model._optimizer, name)
        for a, b in zip(got or [], want or [], strict=True):
            _close(a, b, 1e-9, name)


def test_estimator_takes_the_compiled_epoch(monkeypatch):
    """Momentum on CSR loads the kernels and runs the compiled epoch, averaged or not;
    with an L1 part, the numpy epoch (which the kernels do not implement)."""
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
        ({"momentum": 0.9, "average": True}, "compiled sparse momentum"),
        ({"momentum": 0.9, "penalty": "elasticnet"}, "numpy"),
    ]:
        paths.clear()
        SoftmaxRegressor(solver="sgd", max_iter=2, tol=None, **options).fit(X, y)
        assert set(paths) == {expected}, options


@pytest.mark.parametrize("capacity", [1, 8])
def test_table_restarts_when_full(monkeypatch, capacity):
    """Past MOMENTUM_TABLE_STEPS steps every feature is brought up to date and the
    table starts again: the same epochs (averaged, centred, across chunks)."""
    X, y = make_problem(203, 40, 3, np.float64, sparse=True, seed=8)
    coef, intercept = np.zeros((3, 40), order="F"), np.zeros(3)
    rule = SGDOptimizer(
        [coef, intercept], learning_rate="invscaling", eta0=0.05, power_t=0.3, alpha=0.0,
        momentum=0.9, average=True,
    )  # fmt: skip
    offset = np.asarray(X.mean(axis=0)).ravel()
    options = dict(n_epochs=2, batch_size=7, penalty=Penalty(0.02), fit_intercept=True,
                   offset=offset)  # fmt: skip
    inputs = (X, y, None, np.random.default_rng(1).permutation(203), coef, intercept, rule)
    expected = _epochs(monkeypatch, False, *inputs, **options)
    monkeypatch.setattr(engine_module, "MOMENTUM_TABLE_STEPS", capacity)
    actual = _epochs(monkeypatch, True, *inputs, chunk_rows=70, **options)
    assert actual[0] == "compiled sparse momentum"
    _close(actual[2], expected[2], 1e-9, "coef")
    for got, want in zip(actual[4].velocities + actual[4].averages,
                         expected[4].velocities + expected[4].averages, strict=True):  # fmt: skip
        _close(got, want, 1e-9, "buffers")


def test_velocities_made_on_the_first_compiled_epoch(monkeypatch):
    """A rule whose velocities do not exist yet (momentum switched on by a warm
    start) gets them from the compiled epoch as from the numpy one."""
    X, y = make_problem(203, 40, 3, np.float64, sparse=True, seed=9)
    coef, intercept = np.zeros((3, 40), order="F"), np.zeros(3)
    rule = SGDOptimizer(
        [coef, intercept], learning_rate="constant", eta0=0.05, power_t=0.3, alpha=0.0,
        momentum=0.9,
    )  # fmt: skip
    rule.velocities = None
    options = dict(n_epochs=1, batch_size=32, penalty=Penalty(0.02), fit_intercept=True,
                   offset=None)  # fmt: skip
    expected = _epochs(monkeypatch, False, X, y, None, None, coef, intercept, rule, **options)
    actual = _epochs(monkeypatch, True, X, y, None, None, coef, intercept, rule, **options)
    assert actual[0] == "compiled sparse momentum"
    for got, want in zip(actual[4].velocities, expected[4].velocities, strict=True):
        _close(got, want, 1e-9, "velocity")
    assert np.abs(actual[4].velocities[0]).max() > 0


def test_steps_product_equals_the_steps_one_by_one():
    """The block table's product of any run of steps, against multiplying the
    steps' 3 x 3 maps one at a time (the kernels' Python functions: no compiling)."""
    from sksoftmax import _compiled

    def matrix(step):
        a, b, c, d, e, f, g = step
        return np.array([[a, b, 0.0], [c, d, 0.0], [e, f, g]])

    rng = np.random.default_rng(0)
    for n_steps in (1, 5, 16, 37):
        steps = [
            _compiled._step_map.py_func(
                rng.uniform(0.01, 0.5), rng.uniform(0, 0.3), 0.9, bool(k % 2), rng.uniform(0, 1)
            )
            for k in range(n_steps)
        ]
        level_start, n_rows = _compiled.step_products_layout(n_steps)
        products = np.zeros((max(1, n_rows), _compiled.MAP_SIZE))
        for k in range(n_steps):
            _compiled._record_step.py_func(products, level_start, k, steps[k])
        for first in range(n_steps):
            for stop in range(first, n_steps + 1):
                got = _compiled._steps_product.py_func(products, level_start, first, stop)
                want = np.eye(3)
                for k in range(first, stop):
                    want = matrix(steps[k]) @ want
                assert_allclose(matrix(got), want, rtol=1e-12, atol=1e-14)
