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
from sklearn.exceptions import ConvergenceWarning

import sksoftmax._loop as loop_module
from sksoftmax import SoftmaxRegressor
from sksoftmax._training import Extrapolation


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
    last_error = np.linalg.norm(exact.iterates[-1] - fixed_point)
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
    extrapolation.load(extrapolation.iterates[-1], params)
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
    _Counting.records = 0
    SoftmaxRegressor(random_state=0, **params).partial_fit(X, y, classes=np.unique(y))
    assert _Counting.records == 0  # partial_fit takes single epochs of plain SGD


def test_a_worse_point_is_refused_and_changes_nothing(monkeypatch):
    """Every extrapolation here lands far off (the last iterate times 50): each
    costs one objective and is refused, and the fit equals, bit for bit, one
    that never extrapolates (the weights put back exactly, SAGA's memory kept)."""
    X, y = standardised("wine")
    params = dict(random_state=0, max_iter=23, tol=None, alpha=1e-3)
    refused = []

    def far_off(self):
        refused.append(True)
        return 50.0 * self.iterates[-1]

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
