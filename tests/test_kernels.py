"""Properties of the reference kernels in :mod:`sksoftmax._loss`.

Oracles: the definition of a probability distribution, central finite
differences of ``objective``, brute-force numpy / scipy and sklearn's
``log_loss``. Strategies live in ``strategies.py``; the hypothesis profile
(derandomised, no deadline) in ``conftest.py``.
"""

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal
from scipy.special import expit
from scipy.special import softmax as scipy_softmax
from sklearn.metrics import log_loss
from strategies import SUM_TOL, finite_floats, logit_matrices, problems

from sksoftmax import SoftmaxRegressor
from sksoftmax._loss import (
    cross_entropy,
    full_logits,
    gradient,
    log_softmax,
    logits,
    objective,
    residual,
    softmax,
)


def _rounding_bound(Z, *shifts):
    """Error bound of a log-probability computed from logits as large as ``Z``."""
    eps = np.finfo(Z.dtype).eps
    scale = max([1.0, float(np.abs(Z).max())] + [float(np.abs(s).max()) for s in shifts])
    return 16 * eps * scale


# ------------------------------------------------------------ softmax


@given(logit_matrices())
def test_softmax_is_a_distribution(Z):
    Z_before = Z.copy()
    P = softmax(Z)
    assert P.dtype == Z.dtype and P.shape == Z.shape
    assert_array_equal(Z, Z_before)  # the input is not modified
    assert np.all(P >= 0) and np.all(P <= 1)
    assert np.all(np.abs(P.sum(axis=1) - 1) <= SUM_TOL[Z.dtype])
    # the most likely class is the largest logit
    rows = np.arange(len(Z))
    assert_array_equal(P[rows, np.argmax(Z, axis=1)], P.max(axis=1))


@given(logit_matrices(max_abs=50.0))
def test_softmax_matches_brute_force(Z):
    expected = np.exp(Z.astype(np.float64))
    expected /= expected.sum(axis=1, keepdims=True)
    assert_allclose(softmax(Z), expected, atol=4 * SUM_TOL[Z.dtype], rtol=0)


@given(logit_matrices(), st.data())
def test_softmax_and_log_softmax_invariant_to_row_shift(Z, data):
    shift = data.draw(
        st.lists(finite_floats(Z.dtype, 1e4), min_size=len(Z), max_size=len(Z)).map(
            lambda c: np.array(c, dtype=Z.dtype)[:, None]
        )
    )
    Z_shifted = Z + shift
    # Z + c is rounded once, which moves each log-probability by a few ulps of |Z| + |c|
    bound = _rounding_bound(Z, shift)
    assert_allclose(log_softmax(Z_shifted), log_softmax(Z), atol=bound, rtol=0)
    assert_allclose(softmax(Z_shifted), softmax(Z), atol=bound + SUM_TOL[Z.dtype], rtol=0)


@given(logit_matrices())
def test_log_softmax_finite_and_consistent_with_softmax(Z):
    log_P = log_softmax(Z)
    assert log_P.dtype == Z.dtype
    assert np.all(np.isfinite(log_P))
    assert np.all(log_P <= 0)
    bound = _rounding_bound(Z)
    # exp is 1-Lipschitz on (-inf, 0]
    assert_allclose(np.exp(log_P), softmax(Z), atol=bound + SUM_TOL[Z.dtype], rtol=0)
    # the log-probabilities normalise: logsumexp of each row is 0
    row_max = log_P.max(axis=1)
    lse = row_max + np.log(np.exp(log_P - row_max[:, None]).sum(axis=1))
    assert np.all(np.abs(lse) <= bound + SUM_TOL[Z.dtype])


def test_log_softmax_finite_where_softmax_underflows():
    Z = np.array([[0.0, -800.0, 800.0], [1e4, -1e4, 0.0]])
    assert np.any(softmax(Z) == 0)  # the probabilities underflow...
    log_P = log_softmax(Z)
    assert np.all(np.isfinite(log_P))  # ...their logs do not
    assert_allclose(log_P[0], [-800.0, -1600.0, 0.0])
    assert_allclose(log_P[1], [0.0, -2e4, -1e4])


@given(logit_matrices(min_classes=1, max_classes=1))
def test_binary_full_logits_is_logistic_regression(Z):
    Z_full = full_logits(Z)
    assert Z_full.shape == (len(Z), 2) and Z_full.dtype == Z.dtype
    assert_array_equal(Z_full[:, 0], 0)
    assert_array_equal(Z_full[:, 1], Z[:, 0])
    assert_allclose(softmax(Z_full)[:, 1], expit(Z[:, 0]), atol=SUM_TOL[Z.dtype], rtol=0)


@given(logit_matrices(min_classes=2))
def test_full_logits_is_identity_for_several_columns(Z):
    assert full_logits(Z) is Z


# ------------------------------------------------------------ loss


@given(problems())
def test_cross_entropy_matches_sklearn_log_loss(problem):
    X, y, sw = problem["X"], problem["y"], problem["sample_weight"]
    Z = logits(X, problem["coef"], problem["intercept"])
    P = scipy_softmax(full_logits(Z), axis=1)
    expected = log_loss(y, P, sample_weight=sw, labels=np.arange(problem["n_classes"]))
    assert_allclose(cross_entropy(Z, y, sw), expected, rtol=1e-10)


@given(problems(weighted=False), st.data())
def test_integer_weights_are_repetitions(problem, data):
    X, y = problem["X"], problem["y"]
    counts = np.array(data.draw(st.lists(st.integers(0, 3), min_size=len(y), max_size=len(y))))
    counts[0] = max(counts[0], 1)  # some weight somewhere
    coef, intercept, alpha = problem["coef"], problem["intercept"], problem["alpha"]
    X_rep, y_rep = np.repeat(X, counts, axis=0), np.repeat(y, counts)
    assert_allclose(
        objective(coef, intercept, X, y, counts, alpha),
        objective(coef, intercept, X_rep, y_rep, None, alpha),
        rtol=1e-12,
    )
    for g_weighted, g_repeated in zip(
        gradient(coef, intercept, X, y, counts, alpha),
        gradient(coef, intercept, X_rep, y_rep, None, alpha),
        strict=True,
    ):
        assert_allclose(g_weighted, g_repeated, rtol=1e-10, atol=1e-13)


@given(problems(), st.floats(0.01, 100.0))
def test_weights_are_scale_invariant(problem, scale):
    p = problem
    sw = np.ones(len(p["y"])) if p["sample_weight"] is None else p["sample_weight"]
    args = (p["coef"], p["intercept"], p["X"], p["y"])
    assert_allclose(
        objective(*args, sw * scale, p["alpha"]), objective(*args, sw, p["alpha"]), rtol=1e-12
    )
    if p["sample_weight"] is None:
        assert_allclose(objective(*args, sw, p["alpha"]), objective(*args, None, p["alpha"]))


@given(problems())
def test_residual_is_weighted_p_minus_y(problem):
    p = problem
    Z = logits(p["X"], p["coef"], p["intercept"])
    R = residual(Z.copy(), p["y"], p["sample_weight"])
    n, k = len(p["y"]), p["n_classes"]
    Y = np.eye(k)[p["y"]]
    w = np.ones(n) if p["sample_weight"] is None else p["sample_weight"]
    expected = (scipy_softmax(full_logits(Z), axis=1) - Y) * (w / w.sum())[:, None]
    if k == 2:
        expected = expected[:, 1:]
    else:  # each row of P - Y sums to zero
        assert_allclose(R.sum(axis=1), 0, atol=1e-15)
    assert_allclose(R, expected, atol=1e-15, rtol=1e-12)


# ------------------------------------------------------------ gradient


def _central_differences(f, x, h=1e-6):
    """Central finite differences of scalar ``f`` with respect to array ``x``, in place."""
    grad = np.zeros_like(x)
    for index in np.ndindex(*x.shape):
        saved = x[index]
        x[index] = saved + h
        f_plus = f()
        x[index] = saved - h
        f_minus = f()
        x[index] = saved
        grad[index] = (f_plus - f_minus) / (2 * h)
    return grad


@pytest.mark.parametrize("n_classes", [2, 4], ids=["binary", "multiclass"])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("alpha", [0.0, 0.3], ids=["alpha0", "alpha"])
@settings(max_examples=15)
@given(data=st.data())
def test_gradient_matches_finite_differences(n_classes, weighted, alpha, data):
    p = data.draw(problems(n_classes=n_classes, weighted=weighted, alpha=alpha))
    coef, intercept = p["coef"].copy(), p["intercept"].copy()
    X, y, sw = p["X"], p["y"], p["sample_weight"]

    def f():
        return objective(coef, intercept, X, y, sw, alpha)

    grad_coef, grad_intercept = gradient(coef, intercept, X, y, sw, alpha)
    n_params = 1 if n_classes == 2 else n_classes
    assert grad_coef.shape == (n_params, X.shape[1])
    assert grad_intercept.shape == (n_params,)
    assert_allclose(grad_coef, _central_differences(f, coef), atol=1e-7, rtol=1e-6)
    assert_allclose(grad_intercept, _central_differences(f, intercept), atol=1e-7, rtol=1e-6)


@given(problems(), st.floats(0.0, 0.9))
def test_gradient_same_for_sparse_input(problem, density):
    p = problem
    X = p["X"] * (np.arange(p["X"].size).reshape(p["X"].shape) % 10 >= 10 * density)
    args = (p["coef"], p["intercept"])
    rest = (p["y"], p["sample_weight"], p["alpha"])
    for dense, sparse in zip(
        gradient(*args, X, *rest), gradient(*args, sp.csr_matrix(X), *rest), strict=True
    ):
        assert isinstance(sparse, np.ndarray)
        assert_allclose(sparse, dense, rtol=1e-12, atol=1e-15)
    assert_allclose(objective(*args, sp.csr_matrix(X), *rest), objective(*args, X, *rest))


# -------------------------------------------- the estimator runs the kernels' steps


@settings(max_examples=25)
@given(problems(), st.sampled_from([0.05, 0.5]))
def test_full_batch_epoch_is_one_gradient_step(problem, eta):
    """One full-batch epoch of the fast engine is one step of the reference gradient
    on the centred rows ``X - mu`` (``mu`` the weighted mean; the intercept is then
    ``b + W mu``), and ``loss_curve_`` is the objective after it."""
    p = problem
    X, y, sw, alpha = p["X"], p["y"], p["sample_weight"], p["alpha"]
    clf = SoftmaxRegressor(
        alpha=alpha,
        batch_size=len(y),
        shuffle=False,
        learning_rate="constant",
        eta0=eta,
        max_iter=1,
        tol=None,
    ).fit(X, y, sample_weight=sw, coef_init=p["coef"], intercept_init=p["intercept"])
    mu = np.average(X, axis=0, weights=sw)
    centred_intercept = p["intercept"] + p["coef"] @ mu
    grad_coef, grad_intercept = gradient(p["coef"], centred_intercept, X - mu, y, sw, alpha)
    coef = p["coef"] - eta * grad_coef
    intercept = centred_intercept - eta * grad_intercept - coef @ mu
    assert_allclose(clf.coef_, coef, rtol=1e-10, atol=1e-13)
    assert_allclose(clf.intercept_, intercept, rtol=1e-10, atol=1e-12)
    assert_allclose(clf.loss_curve_[0], objective(coef, intercept, X, y, sw, alpha), rtol=1e-10)


@settings(max_examples=25)
@given(problems(), st.sampled_from([0.05, 0.5]))
def test_minibatch_epoch_is_sequence_of_batch_steps(problem, eta):
    """Unshuffled batches are visited in order, each a step on its batch's weighted mean.

    A batch's weights are the sample weights over their mean on the whole training
    set, so the batch gradient is the kernel's (batch-normalised) gradient times
    ``mean(s_batch) / mean(s)``: an unbiased estimate of the full gradient. A ragged
    last batch of m rows steps ``eta * m / batch_size``, so that every sample weighs
    the same in an epoch.
    """
    p = problem
    X, y, sw, alpha = p["X"], p["y"], p["sample_weight"], p["alpha"]
    batch_size = max(1, len(y) // 3)
    clf = SoftmaxRegressor(
        alpha=alpha,
        batch_size=batch_size,
        shuffle=False,
        solver="sgd",
        learning_rate="constant",
        eta0=eta,
        max_iter=1,
        tol=None,
    ).fit(X, y, sample_weight=sw, coef_init=p["coef"], intercept_init=p["intercept"])
    w = np.ones(len(y)) if sw is None else sw
    mu = np.average(X, axis=0, weights=w)
    X_centred = X - mu  # what the engine trains on, implicitly
    coef, intercept = p["coef"].copy(), p["intercept"] + p["coef"] @ mu
    for start in range(0, len(y), batch_size):
        batch = slice(start, start + batch_size)
        scale = w[batch].mean() / w.mean()
        g_coef, g_intercept = gradient(
            coef, intercept, X_centred[batch], y[batch], w[batch], 0.0
        )
        step = eta * len(y[batch]) / batch_size
        coef, intercept = (
            coef - step * (scale * g_coef + alpha * coef),
            intercept - step * scale * g_intercept,
        )
    assert_allclose(clf.coef_, coef, rtol=1e-9, atol=1e-12)
    assert_allclose(clf.intercept_, intercept - coef @ mu, rtol=1e-9, atol=1e-11)
