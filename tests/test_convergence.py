"""Time to a good model: the default fit lands at LogisticRegression's optimum, and
a bad run never passes for a good one.

Oracles: LogisticRegression at tol=1e-10 (the better of lbfgs and
newton-cholesky, evaluated by :func:`sksoftmax._loss.objective`) for the optimum;
explicit centring, in numpy, for the implicit one; every permutation of the
rows for order independence.
"""

import itertools
import warnings
from functools import cache

import numpy as np
import pytest
import scipy.sparse as sp
from _data import standardised
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

from sksoftmax import SoftmaxRegressor
from sksoftmax._loss import objective

pytestmark = pytest.mark.usefixtures("blas_single_thread")

# scikit-learn's glmnet test case (sklearn/linear_model/tests/test_logistic.py):
# 9 rows, strongly regularised.
GLMNET_X = np.array(
    [[-1, -1], [-1, 0], [-1, 1], [0, -1], [0, 0], [0, 1], [1, -1], [1, 0], [1, 1]], float
)
GLMNET_Y = np.array([1, 1, 1, 1, 0, 1, 0, 0, 0])


def dataset(name):
    if name == "glmnet":
        return GLMNET_X, GLMNET_Y
    if name == "digits_pixels":  # pixels in [0, 1], not centred: what centring is for
        X, y = load_digits(return_X_y=True)
        return X / 16.0, y
    return standardised(name)


@cache
def optimum(name, alpha):
    """(objective, predict_proba) at LogisticRegression's optimum."""
    X, y = dataset(name)
    best = None
    for solver in ["lbfgs", "newton-cholesky"]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            lr = LogisticRegression(
                C=1 / (alpha * len(y)), tol=1e-10, max_iter=10_000, solver=solver
            ).fit(X, y)
        value = objective(lr.coef_, lr.intercept_, X, y, alpha=alpha)
        if best is None or value < best[0]:
            best = (value, lr.predict_proba(X))
    return best


def fit_without_warnings(X, y, **params):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # ConvergenceWarning included
        return SoftmaxRegressor(random_state=0, **params).fit(X, y)


GOAL_1 = [
    ("iris", 1e-2),
    ("wine", 1e-2),
    ("breast_cancer", 1e-2),
    ("digits", 1e-2),
    ("glmnet", 1.0),
    ("digits_pixels", 1e-2),
    ("digits_pixels", 1e-3),
    # Nearly separable at the weakest penalty: the optimum's weights are large and
    # SAGA's epochs crawl towards them; the extrapolation of the iterates
    # (sksoftmax._training.Extrapolation) is what lands these within 1000 epochs.
    ("iris", 1e-4),
    ("wine", 1e-4),
    ("breast_cancer", 1e-4),
    ("digits", 1e-4),
]


@pytest.mark.parametrize("name, alpha", GOAL_1)
def test_default_fit_lands_at_the_optimum(name, alpha):
    """Every parameter but alpha at its default: within 1e-3 of the optimum's
    objective, predict_proba within 1e-2, no warning, and best_loss_ is the
    objective of the returned model, never below the optimum."""
    X, y = dataset(name)
    f_opt, proba_opt = optimum(name, alpha)
    model = fit_without_warnings(X, y, alpha=alpha)
    value = objective(model.coef_, model.intercept_, X, y, alpha=alpha)
    assert (value - f_opt) / f_opt < 1e-3
    assert np.abs(model.predict_proba(X) - proba_opt).max() < 1e-2
    assert model.best_loss_ == pytest.approx(value, rel=1e-10)
    assert model.best_loss_ >= f_opt * (1 - 1e-9)
    assert min(model.loss_curve_) >= f_opt * (1 - 1e-9)


def test_sparse_input_lands_at_the_optimum_without_densifying(no_densify_csr):
    """CSR trains by SGD (solver="auto"), centred implicitly, and still lands."""
    X, y = dataset("digits_pixels")
    f_opt, _ = optimum("digits_pixels", 1e-2)
    model = fit_without_warnings(no_densify_csr(X), y, alpha=1e-2)
    value = objective(model.coef_, model.intercept_, X, y, alpha=1e-2)
    assert (value - f_opt) / f_opt < 1e-3


@pytest.fixture
def no_densify_csr(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a sparse input was densified")

    for method in ("toarray", "todense", "__array__"):
        monkeypatch.setattr(sp.csr_matrix, method, refuse, raising=False)
    return sp.csr_matrix


@pytest.mark.parametrize("solver", ["saga", "sgd"])
def test_loss_curve_is_the_objective_at_the_returned_weights(solver):
    """Each epoch's entry is the objective of the model fit would return then:
    the same fit stopped after that many epochs."""
    X, y = dataset("digits_pixels")
    params = dict(alpha=1e-2, random_state=0, tol=None, solver=solver, average=solver == "sgd")
    curve = SoftmaxRegressor(max_iter=4, **params).fit(X, y).loss_curve_
    for epochs in range(1, 5):
        model = SoftmaxRegressor(max_iter=epochs, **params).fit(X, y)
        expected = objective(model.coef_, model.intercept_, X, y, alpha=1e-2)
        assert curve[epochs - 1] == pytest.approx(expected, rel=1e-12)


def test_centring_is_training_on_the_centred_rows():
    """Implicit centring is exactly a fit on X - mean(X), intercept shifted back:
    the same model, whatever the engine does inside."""
    X, y = dataset("digits_pixels")
    mu = X.mean(axis=0)
    params = dict(alpha=1e-2, random_state=0, max_iter=3, tol=None)
    implicit = SoftmaxRegressor(**params).fit(X, y)
    explicit = SoftmaxRegressor(**params).fit(X - mu, y)
    assert_allclose(implicit.coef_, explicit.coef_, rtol=1e-8, atol=1e-11)
    assert_allclose(implicit.intercept_, explicit.intercept_ - explicit.coef_ @ mu, atol=1e-9)


def test_warm_start_on_shifted_data_recentres_exactly():
    """A warm start on data with another mean moves the centring without moving
    the model: an epoch of it at a negligible step predicts as before."""
    X, y = dataset("digits_pixels")
    model = SoftmaxRegressor(alpha=1e-2, random_state=0, warm_start=True, max_iter=3, tol=None)
    model.fit(X, y)
    before = model.predict_proba(X)
    model.set_params(learning_rate="constant", eta0=1e-300, max_iter=1).fit(X + 5.0, y)
    assert_allclose(model._feature_offset, X.mean(axis=0) + 5.0)
    assert_allclose(model.predict_proba(X), before, atol=1e-12)


# ------------------------------------------------------------ bad runs


def scaled_iris():
    X, y = standardised("iris")
    return X * 1000.0, y


DIVERGING = [
    # The cases: a step too large for the data, slowly or at once.
    ("constant, features x1000", scaled_iris, dict(learning_rate="constant", eta0=30, alpha=0.1)),
    ("constant eta0=100 (the CLI case)", lambda: standardised("iris"),
     dict(learning_rate="constant", eta0=100)),
    ("invscaling, growing step", lambda: standardised("iris"),
     dict(learning_rate="invscaling", eta0=1.0, power_t=-1.0)),
    ("solver sgd, constant eta0=100", lambda: standardised("iris"),
     dict(learning_rate="constant", eta0=1000, solver="sgd")),
]


@pytest.mark.parametrize("solver", ["saga", "sgd"])
def test_a_run_ending_far_above_its_start_raises_with_tol_none(solver):
    """tol=None returns the last weights: if they are worse than twice the start,
    that is a divergence, not a model."""
    X, y = standardised("iris")
    model = SoftmaxRegressor(
        learning_rate="constant", eta0=1000, solver=solver, max_iter=3, tol=None, random_state=0
    )
    with pytest.raises(ValueError, match="diverged"):
        model.fit(X, y)
    assert not hasattr(model, "coef_")


@pytest.mark.parametrize("case, data, params", DIVERGING, ids=[c[0] for c in DIVERGING])
def test_a_diverging_run_with_a_user_step_raises_and_changes_nothing(case, data, params):
    X, y = data()
    fitted = SoftmaxRegressor(random_state=0, max_iter=2, tol=None).fit(X, y)
    state = {k: v.copy() for k, v in vars(fitted).items() if isinstance(v, np.ndarray)}
    fitted.set_params(max_iter=1000, tol=1e-4, **params)
    with pytest.raises(ValueError, match=r"(?s)diverged.*eta=.*smaller eta0|power_t"):
        fitted.fit(X, y)
    for key, value in state.items():
        assert_array_equal(getattr(fitted, key), value)


def test_an_adaptive_step_too_large_recovers_by_itself():
    """learning_rate="adaptive" (the default): the step is ours, so a blow-up goes
    back to the best weights and divides the step; the fit still lands."""
    X, y = standardised("iris")
    f_opt, _ = optimum("iris", 1e-2)
    model = fit_without_warnings(X, y, alpha=1e-2, eta0=1e4)
    assert model._optimizer.eta < 1e4
    value = objective(model.coef_, model.intercept_, X, y, alpha=1e-2)
    assert (value - f_opt) / f_opt < 1e-3
    assert model.best_loss_ >= f_opt * (1 - 1e-9)


def test_a_rising_run_never_returns_as_converged():
    """A constant step that oscillates (the objective rises over the last epochs):
    the fit keeps the best weights and warns, naming the step."""
    X, y = standardised("iris")
    with pytest.warns(ConvergenceWarning, match=r"(?s)rose.*eta=.*best weights"):
        model = SoftmaxRegressor(
            learning_rate="constant", eta0=12.0, alpha=1e-2, random_state=0, solver="sgd",
            n_iter_no_change=3,
        ).fit(X, y)
    value = objective(model.coef_, model.intercept_, X, y, alpha=1e-2)
    assert value == pytest.approx(min(model.loss_curve_), rel=1e-10)
    assert model.best_loss_ == pytest.approx(value, rel=1e-10)


# ------------------------------------------------------------ first chunks


@pytest.mark.parametrize("labels", [(0, 1, 1), (1, 0, 0), (0, 0, 1)])
def test_one_row_chunks_of_zeros_predict_the_same_in_every_order(labels):
    """dask-ml's Incremental case: three all-zero rows, one chunk each, eta0="auto"
    sized on the first. Every order gives the same prediction (the majority)."""
    X = np.zeros((3, 4))
    predictions = set()
    for order in itertools.permutations(range(3)):
        model = SoftmaxRegressor(random_state=0)
        for row in order:
            model.partial_fit(X[[row]], np.array([labels[row]]), classes=[0, 1])
        predictions.add(int(model.predict(X[:1])[0]))
    majority = int(np.bincount(labels).argmax())
    assert predictions == {majority}


def test_a_one_row_first_chunk_steps_in_proportion_to_its_size():
    """A chunk smaller than batch_size takes the share of a step its rows make up:
    a one-row chunk moves the model 1/batch_size as far as a full batch of it."""
    X, y = standardised("iris")
    one = SoftmaxRegressor(random_state=0, eta0=0.5, learning_rate="constant")
    one.partial_fit(X[:1], y[:1], classes=[0, 1, 2])
    full = SoftmaxRegressor(random_state=0, eta0=0.5, learning_rate="constant", batch_size=1)
    full.partial_fit(X[:1], y[:1], classes=[0, 1, 2])
    assert_allclose(one.coef_ * one.batch_size, full.coef_, rtol=1e-12)


@pytest.mark.parametrize("rho", [0.3, 0.77, 0.95])
def test_stopping_rule_extrapolates_a_geometric_decrease_exactly(rho):
    """On f_k = f* + c rho^k (SAGA's linear rate) the estimated gain still to come
    is the true gap f_k - f*; tol is then the relative distance to the optimum."""
    from sksoftmax._training import StoppingRule

    f_opt, c = 0.5, 0.2
    values = [f_opt + c * rho**k for k in range(12)]
    rule = StoppingRule(1e-4, 5, values[0])
    for k, value in enumerate(values[1:], start=1):
        if k >= 2:  # after one decrease there is no rate yet (0.5 is assumed)
            assert rule.left_to_gain(value) == pytest.approx(value - f_opt, rel=1e-9)
        rule.update(value, k)
    # A plateau or a rise leaves nothing to gain.
    assert rule.left_to_gain(values[-1]) == 0.0
    assert rule.left_to_gain(values[-1] + 1e-3) == 0.0


@pytest.mark.parametrize("alpha", [0.152, 0.316])
def test_a_swinging_objective_shrinks_the_step_and_stops(alpha):
    """At a large alpha SAGA's automatic step can make the objective swing from epoch
    to epoch (measured +-1.2e-3 on 60% of digits, examples/plot_elastic_net_path.py);
    the decreases of every other epoch must not pass for a geometric convergence
    still to come (they did: 1000 epochs at 2e-4 from the optimum). The fit shrinks
    its step and stops near the optimum."""
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    X, y = load_digits(return_X_y=True)
    X, _, y, _ = train_test_split(X, y, test_size=0.4, stratify=y, random_state=0)
    X = StandardScaler().fit_transform(X)
    lr = LogisticRegression(C=1 / (alpha * len(y)), tol=1e-10, max_iter=10_000).fit(X, y)
    value = objective(lr.coef_, lr.intercept_, X, y, alpha=alpha)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model = SoftmaxRegressor(alpha=alpha, random_state=0).fit(X, y)
    assert model.n_iter_ < 200
    gap = (objective(model.coef_, model.intercept_, X, y, alpha=alpha) - value) / value
    assert 0 <= gap < 5e-4

