"""The extrapolation of SAGA's iterates (sksoftmax._training.Extrapolation).

Oracles: the fixed point of a linear iteration, solved by numpy (the case the
method is exact for); a fit whose extrapolations are all refused equals, bit
for bit, a fit that never extrapolates; LogisticRegression's optimum (in
test_convergence.py) for what the extrapolation buys.
"""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from _data import standardised
from numpy.testing import assert_array_equal
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning

import sksoftmax._engine as engine_module
import sksoftmax._loop as loop_module
from sksoftmax import SoftmaxRegressor
from sksoftmax._training import Extrapolation, StoppingRule


@pytest.mark.parametrize("seed", range(10))
def test_recovers_the_fixed_point_of_a_linear_iteration(seed):
    """x <- A x + b converges slowly (eigenvalues up to 0.95); 5 differences of a
    2-dimensional one have an exact cancelling combination, so the extrapolation
    is its fixed point, while the last iterate is still 5% or more from it. With
    the default regularisation the point is still 10x nearer than the iterate."""
    rng = np.random.default_rng(seed)
    basis, _ = np.linalg.qr(rng.normal(size=(2, 2)))
    A = basis @ np.diag(rng.uniform(0.5, 0.95, size=2)) @ basis.T
    b = rng.normal(size=2)
    fixed_point = np.linalg.solve(np.eye(2) - A, b)
    exact, default = Extrapolation(every=5, regularisation=1e-12), Extrapolation(every=5)
    x = rng.normal(size=2)
    due = []
    for _ in range(6):
        due.append(exact.record([x]))
        default.record([x])
        x = A @ x + b
    assert due == [False] * 5 + [True]
    scale = np.linalg.norm(fixed_point)
    last_error = np.linalg.norm(exact.last - fixed_point)
    assert last_error > 5e-2 * scale
    assert np.linalg.norm(exact.point() - fixed_point) < 1e-5 * scale
    assert np.linalg.norm(default.point() - fixed_point) < 0.1 * last_error


def test_degenerate_iterates_give_no_point():
    """Iterates that do not move (a converged fit) have no direction to extrapolate."""
    extrapolation = Extrapolation(every=2)
    for _ in range(3):
        extrapolation.record([np.ones((2, 3)), np.zeros(2)])
    assert extrapolation.point() is None


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("order", ["C", "F"])
def test_record_and_load_round_trip_in_place(dtype, order):
    """Weights written back land in the same arrays, in their order and dtype,
    to the bit (float32 through float64 is exact)."""
    rng = np.random.default_rng(0)
    coef = np.asarray(rng.normal(size=(3, 5)), dtype=dtype, order=order)
    intercept = rng.normal(size=3).astype(dtype)
    params = [coef, intercept]
    saved = [p.copy() for p in params]
    extrapolation = Extrapolation(every=1)
    extrapolation.record(params)
    for p in params:
        p[...] = 0
    extrapolation.load(extrapolation.last, params)
    assert params[0] is coef and params[1] is intercept
    assert coef.flags.f_contiguous == (order == "F")
    for p, s in zip(params, saved, strict=True):
        assert p.dtype == dtype
        assert_array_equal(p, s)


class _Counting(Extrapolation):
    records = 0

    def record(self, params):
        type(self).records += 1
        return super().record(params)


@pytest.mark.parametrize(
    "params, sparse, extrapolates",
    [
        ({}, False, True),
        ({}, True, True),
        ({"learning_rate": "constant", "eta0": 0.05}, False, True),
        ({"solver": "sgd"}, False, False),
        ({"momentum": 0.5}, False, False),
        ({"average": True}, False, False),
        ({"penalty": "l1"}, False, False),
        ({"penalty": "elasticnet"}, False, False),
    ],
)
def test_which_fits_extrapolate(monkeypatch, params, sparse, extrapolates):
    """SAGA's plain steps only: SGD's iterates wander at a noise floor, momentum
    and averages belong to the iterates left behind, and a combination of
    sparse (L1) iterates is not sparse."""
    X, y = standardised("iris")
    X = sp.csr_matrix(X) if sparse else X
    monkeypatch.setattr(loop_module, "Extrapolation", _Counting)
    _Counting.records = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        SoftmaxRegressor(random_state=0, max_iter=12, **params).fit(X, y)
    assert (_Counting.records > 0) == extrapolates


def test_a_worse_point_is_refused_and_changes_nothing(monkeypatch):
    """Every extrapolation here lands far off (the last iterate times 50): each
    costs one objective and is refused, and the fit equals, bit for bit, one
    that never extrapolates (the weights put back exactly, SAGA's memory kept)."""
    X, y = standardised("wine")
    params = dict(random_state=0, max_iter=23, tol=None, alpha=1e-3)
    refused = []

    def far_off(self):
        refused.append(True)
        return 50.0 * self.last

    monkeypatch.setattr(Extrapolation, "point", far_off)
    tried = SoftmaxRegressor(**params).fit(X, y)
    assert len(refused) == 4  # epochs 5, 10, 15, 20: a new cycle after each
    monkeypatch.setattr(loop_module.FitLoop, "_accelerates", lambda self: False)
    plain = SoftmaxRegressor(**params).fit(X, y)
    assert_array_equal(tried.coef_, plain.coef_)
    assert_array_equal(tried.intercept_, plain.intercept_)
    assert tried.loss_curve_ == plain.loss_curve_


def test_the_extrapolation_is_what_lands_a_weak_penalty(monkeypatch):
    """Nearly separable iris at alpha=1e-4: with extrapolation the default fit
    converges (test_convergence checks it lands within 1e-3 of the optimum), in
    fewer epochs than the 1000 that plain SAGA spends without converging."""
    X, y = standardised("iris")
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        accelerated = SoftmaxRegressor(random_state=0).fit(X, y)
    monkeypatch.setattr(loop_module.FitLoop, "_accelerates", lambda self: False)
    with pytest.warns(ConvergenceWarning, match="Maximum number of epochs"):
        plain = SoftmaxRegressor(random_state=0).fit(X, y)
    assert accelerated.n_iter_ < plain.n_iter_ == 1000
    assert accelerated.best_loss_ < plain.best_loss_


def test_memory_is_the_last_iterate_and_the_differences():
    """every + 1 float64 rows of the weights' size, whatever the weights' dtype;
    the point is the combination of the iterates themselves."""
    rng = np.random.default_rng(0)
    extrapolation = Extrapolation(every=3)
    iterates = [rng.normal(size=(2, 4)).astype(np.float32) for _ in range(4)]
    for coef in iterates:
        extrapolation.record([coef])
    assert extrapolation.last.nbytes + extrapolation.differences.nbytes == 4 * 8 * 8
    flat = np.array([x.ravel() for x in iterates], dtype=np.float64)
    differences = np.diff(flat, axis=0)
    gram = differences @ differences.T
    z = np.linalg.solve(gram / np.linalg.norm(gram, 2) + 1e-8 * np.eye(3), np.ones(3))
    np.testing.assert_allclose(extrapolation.point(), (z / z.sum()) @ flat[1:], rtol=1e-9)


def _rule_after(values, jumped_at=None, window=10):
    """A StoppingRule fed ``values`` (the first is the start); the epoch of the
    first stall, or None."""
    rule = StoppingRule(1e-4, 5, values[0], window=window)
    for epoch, value in enumerate(values[1:], start=1):
        rule.update(value, epoch, jumped=epoch == jumped_at)
        if rule.stalled():
            return epoch
    return None


FALL = [1.5, 1.2, 1.1, 1.05, 1.0]


def test_the_crawl_between_jumps_counts_once_a_jump_was_taken():
    """The shape of iris at alpha=1e-4: each cycle a jump of 2e-4, a rise of
    1.5e-4 (SAGA's memory is stale after the jump), a crawl of 1e-5 an epoch.
    Epoch by epoch that is a swinging plateau, and the rule alone stalled
    (iris: 1e-3 above the optimum); over a window of two cycles the best falls
    1.6e-4, more than tol, and the fit goes on."""
    values, jumps, value = list(FALL), [], FALL[-1]
    for _ in range(8):
        for step in [-2e-4, 1.5e-4, -1e-5, -1e-5, -1e-5]:
            value += step
            values.append(value)
        jumps.append(len(values) - 5)
    rule_alone = StoppingRule(1e-4, 5, values[0])
    with_jumps = StoppingRule(1e-4, 5, values[0], window=10)
    stalled_alone = stalled_with_jumps = None
    for epoch, value in enumerate(values[1:], start=1):
        rule_alone.update(value, epoch)
        with_jumps.update(value, epoch, jumped=epoch in jumps)
        if rule_alone.stalled() and stalled_alone is None:
            stalled_alone = epoch
        if with_jumps.stalled() and stalled_with_jumps is None:
            stalled_with_jumps = epoch
    assert stalled_alone is not None and stalled_alone < 20
    assert stalled_with_jumps is None


@pytest.mark.parametrize("period", [2, 3])
def test_a_swing_after_a_jump_still_stalls(period):
    """An objective that swings and never beats its best is no progress, however
    far above it stood a window ago: after a jump the rule stalls within the
    window and the patience (a window of raw values never stalled a period-3
    swing)."""
    swing = [1.0 + 1e-3 * (1 + k % period) for k in range(60)]
    assert _rule_after(FALL + swing) is not None
    stalled = _rule_after(FALL + swing, jumped_at=4)
    assert stalled is not None and stalled <= len(FALL) + 10 + 5


def test_a_rise_after_a_jump_is_no_gain():
    rises = [1.0 + 1e-2 * k for k in range(1, 30)]
    stalled = _rule_after(FALL + rises, jumped_at=4)
    assert stalled is not None and stalled <= len(FALL) + 10 + 5


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(
    "sparse, params",
    [(False, {}), (True, {}), (True, {"fit_intercept": False}), (True, {"early_stopping": True})],
)
def test_compiled_epochs_jump_as_the_numpy_epochs_do(monkeypatch, sparse, params, dtype):
    """The weights written between epochs are what the compiled epochs start from
    (they keep nothing of the weights across epochs: the sparse one's lagged
    steps, lazy scale and centring are settled at each epoch's end): with jumps
    taken, the compiled fit follows the numpy one epoch for epoch."""
    pytest.importorskip("numba")
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(dtype)
    X = sp.csr_matrix(X) if sparse else X
    fit = dict(random_state=0, max_iter=16, tol=None, alpha=1e-4, **params)
    jumps = []
    original = loop_module.FitLoop._extrapolate

    def spy(self, value, max_logit):
        result = original(self, value, max_logit)
        jumps.append(result[2])
        return result

    monkeypatch.setattr(loop_module.FitLoop, "_extrapolate", spy)
    paths = []
    original_path = engine_module.EpochEngine.path

    def path(self, *args, **kwargs):
        paths.append(original_path(self, *args, **kwargs))
        return paths[-1]

    monkeypatch.setattr(engine_module.EpochEngine, "path", path)
    monkeypatch.setattr(engine_module, "COMPILED_MIN_SIZE", 0)
    monkeypatch.setattr(engine_module, "COMPILED_MIN_NNZ", 0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        compiled = SoftmaxRegressor(**fit).fit(X, y)
    assert set(paths) == {"compiled sparse saga" if sparse else "compiled dense"}
    assert sum(jumps) >= 2
    monkeypatch.setenv("SKSOFTMAX_NUMBA", "0")
    paths.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reference = SoftmaxRegressor(**fit).fit(X, y)
    assert set(paths) == {"numpy"}
    rtol = 1e-9 if dtype == np.float64 else 1e-3
    np.testing.assert_allclose(compiled.loss_curve_, reference.loss_curve_, rtol=rtol)
    np.testing.assert_allclose(
        compiled.predict_proba(X), reference.predict_proba(X), atol=10 * rtol
    )


def test_going_back_to_the_best_weights_restarts_the_extrapolation(monkeypatch):
    """After the adaptive step blows up, the fit goes back to its best weights:
    the next cycle starts there, not from iterates it left behind."""
    restarts = []
    original = Extrapolation.restart

    def restart(self):
        restarts.append(True)
        original(self)

    monkeypatch.setattr(Extrapolation, "restart", restart)
    X, y = standardised("iris")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = SoftmaxRegressor(random_state=0, eta0=1e4, max_iter=30).fit(X, y)
    assert restarts
    assert model.best_loss_ < model.loss_curve_[0]
