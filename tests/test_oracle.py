"""SoftmaxRegressor reaches LogisticRegression's optimum.

With ``alpha = 1 / (C * sum(sample_weight))`` our objective is
LogisticRegression(C=C)'s divided by ``C * sum(sample_weight)``, so both have
the same minimiser; the probabilities at the optimum are unique. The long fits
below are deterministic full-batch runs (Nesterov momentum, constant step 1/L
computed here by brute force) that converge far below the 1e-3 tolerance in
well under a second each.
"""

import numpy as np
import pytest
from _data import standardised
from numpy.testing import assert_allclose
from sklearn.linear_model import LogisticRegression

from sksoftmax import SoftmaxRegressor
from sksoftmax._loss import objective

pytestmark = pytest.mark.usefixtures("blas_single_thread")


# Full-batch gradient descent with Nesterov momentum; eta0 from _long_fit.
LONG_FIT = dict(
    batch_size=1_000_000,
    shuffle=False,
    learning_rate="constant",
    momentum=0.95,
    nesterov=True,
    tol=None,
    max_iter=600,
)


def _long_fit(X, y, alpha, sample_weight=None, **params):
    """A full-batch Nesterov fit with step 1/L, L the exact smoothness constant bound.

    ``L = c * lambda_max([X, 1]^T S [X, 1] / sum(s)) + alpha``, with ``c`` the
    largest curvature of the cross-entropy in the logits (1/2, or 1/4 when
    binary); independent of the estimator's own ``eta0="auto"`` heuristic.
    """
    s = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, dtype=float)
    X1 = np.hstack([X, np.ones((len(X), 1))]).astype(np.float64)
    lambda_max = np.linalg.eigvalsh((X1 * s[:, None]).T @ X1 / s.sum())[-1]
    curvature = 0.25 if len(np.unique(y)) == 2 else 0.5
    eta0 = 1.0 / (curvature * lambda_max + alpha)
    clf = SoftmaxRegressor(alpha=alpha, eta0=eta0, **LONG_FIT, **params)
    return clf.fit(X, y, sample_weight=sample_weight)


def _oracle(X, y, C, **kwargs):
    sample_weight = kwargs.pop("sample_weight", None)
    return LogisticRegression(C=C, tol=1e-10, max_iter=10_000, **kwargs).fit(
        X, y, sample_weight=sample_weight
    )


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(
    "name, C",
    # digits at C=0.1: with C=1 it is ill-conditioned enough to need ~4x the epochs
    [("iris", 1.0), ("iris", 10.0), ("wine", 1.0), ("digits", 0.1)],
)
def test_reaches_logistic_regression_optimum(name, C, dtype):
    X, y = standardised(name)
    oracle = _oracle(X, y, C)
    X = X.astype(dtype)
    clf = _long_fit(X, y, alpha=1 / (C * len(y)))
    assert clf.coef_.dtype == dtype and clf.intercept_.dtype == dtype
    assert clf.coef_.shape == oracle.coef_.shape == (len(np.unique(y)), X.shape[1])
    proba = clf.predict_proba(X)
    assert np.abs(proba - oracle.predict_proba(X)).max() < 1e-3
    assert np.mean(clf.predict(X) == oracle.predict(X)) > 0.99


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_binary_reaches_logistic_regression_optimum(dtype):
    X, y = standardised("breast_cancer")
    oracle = _oracle(X, y, 1.0)
    clf = _long_fit(X.astype(dtype), y, alpha=1 / len(y))
    # one weight vector for classes_[1], exactly LogisticRegression's layout
    assert clf.coef_.shape == oracle.coef_.shape == (1, X.shape[1])
    assert clf.intercept_.shape == (1,)
    assert_allclose(clf.coef_, oracle.coef_, atol=1e-3)
    assert_allclose(clf.intercept_, oracle.intercept_, atol=1e-3)
    assert np.abs(clf.predict_proba(X) - oracle.predict_proba(X)).max() < 1e-3
    decision = clf.decision_function(X)
    assert decision.shape == (len(y),)
    assert_allclose(decision, oracle.decision_function(X), atol=1e-2)


def test_weighted_reaches_weighted_optimum():
    """LogisticRegression weighs the summed loss, so alpha = 1 / (C * sum(s))."""
    X, y = standardised("wine")
    sample_weight = np.random.RandomState(0).randint(1, 5, size=len(y)).astype(float)
    oracle = _oracle(X, y, 1.0, sample_weight=sample_weight)
    clf = _long_fit(X, y, alpha=1 / sample_weight.sum(), sample_weight=sample_weight)
    assert np.abs(clf.predict_proba(X) - oracle.predict_proba(X)).max() < 1e-3
    # and the weights matter: the unweighted optimum is measurably different
    unweighted = _oracle(X, y, 1.0)
    assert np.abs(unweighted.predict_proba(X) - oracle.predict_proba(X)).max() > 1e-2


def test_balanced_class_weight_reaches_optimum():
    X, y = standardised("iris")
    keep = np.r_[np.arange(0, 10), np.arange(50, 150)]  # class 0 is rare
    X, y = X[keep], y[keep]
    oracle = _oracle(X, y, 1.0, class_weight="balanced")
    # balanced weights sum to n_samples
    clf = _long_fit(X, y, alpha=1 / len(y), class_weight="balanced")
    assert np.abs(clf.predict_proba(X) - oracle.predict_proba(X)).max() < 1e-3


def test_no_intercept_reaches_optimum():
    X, y = standardised("wine")
    oracle = _oracle(X, y, 1.0, fit_intercept=False)
    clf = _long_fit(X, y, alpha=1 / len(y), fit_intercept=False)
    assert np.all(clf.intercept_ == 0)
    assert np.abs(clf.predict_proba(X) - oracle.predict_proba(X)).max() < 1e-3


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_shuffled_minibatches_approach_optimum(weighted):
    """Averaged constant-step SGD on shuffled minibatches heads for the same optimum.

    Plain SGD only reaches a neighbourhood of the optimum, so the tolerance is
    looser; a wrongly scaled batch gradient (e.g. weights not normalised over the
    whole training set) converges to another point, far outside it.
    """
    X, y = standardised("wine")
    sample_weight = (
        np.random.RandomState(0).randint(1, 5, size=len(y)).astype(float) if weighted else None
    )
    total_weight = len(y) if sample_weight is None else sample_weight.sum()
    oracle = _oracle(X, y, 1.0, sample_weight=sample_weight)
    alpha = 1 / total_weight
    clf = SoftmaxRegressor(
        alpha=alpha,
        batch_size=32,
        learning_rate="constant",
        average=20 * len(y),  # average from the 21st epoch on
        tol=None,
        max_iter=300,
        random_state=0,
    ).fit(X, y, sample_weight=sample_weight)
    assert clf.t_ == 300 * len(y)

    def f(model):
        return objective(model.coef_, model.intercept_, X, y, sample_weight, alpha)

    tolerance = 5e-4
    assert 0 <= f(clf) - f(oracle) < tolerance
    assert np.abs(clf.predict_proba(X) - oracle.predict_proba(X)).max() < 5e-2
    if weighted:  # the tolerance does separate the weighted optimum from the unweighted one
        assert f(_oracle(X, y, 1.0)) - f(oracle) > 5 * tolerance
