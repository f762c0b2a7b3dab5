"""SoftmaxRegressor as a scikit-learn estimator.

Default accuracy against LogisticRegression, composition (Pipeline, GridSearchCV,
clone, pickle), sample and class weights, sparse input, bad input (with the
fitted state left untouched), dtypes and labels.
"""

import pickle
import tracemalloc
import warnings

import joblib
import numpy as np
import pytest
import scipy.sparse as sp
from _data import LOADERS, standardised
from numpy.testing import assert_allclose, assert_array_equal
from scipy.special import logsumexp
from sklearn.base import clone
from sklearn.datasets import load_iris
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, cross_val_score, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import compute_class_weight

import sksoftmax._softmax_regressor as softmax_module
from sksoftmax import SoftmaxRegressor
from sksoftmax._loss import objective

pytestmark = pytest.mark.usefixtures("blas_single_thread")


# Deterministic full-batch gradient descent: sample weights act exactly as
# repeated rows and zero weights as removed rows.
FULL_BATCH = dict(  # full-batch gradient descent
    solver="sgd",
    batch_size=1_000_000,
    shuffle=False,
    learning_rate="constant",
    eta0=0.1,
    tol=None,
    max_iter=50,
)


@pytest.fixture(scope="module")
def iris():
    return standardised("iris")


@pytest.fixture(scope="module")
def fitted(iris):
    X, y = iris
    return SoftmaxRegressor(random_state=0).fit(X, y)


def _assert_same_model(a, b, rtol=1e-10, atol=1e-12):
    assert_array_equal(a.classes_, b.classes_)
    assert a.coef_.dtype == b.coef_.dtype
    assert_allclose(a.coef_, b.coef_, rtol=rtol, atol=atol)
    assert_allclose(a.intercept_, b.intercept_, rtol=rtol, atol=atol)


# ------------------------------------------------------------ defaults


@pytest.mark.parametrize("name", list(LOADERS))
def test_defaults_as_accurate_as_logistic_regression(name):
    X, y = LOADERS[name](return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, stratify=y, random_state=0
    )
    scaler = StandardScaler().fit(X_train)
    X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
    reference = LogisticRegression().fit(X_train, y_train).score(X_test, y_test)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        clf = SoftmaxRegressor(random_state=0).fit(X_train, y_train)
    assert clf.score(X_test, y_test) >= reference - 0.01
    # The default alpha=1e-4 makes these small sets nearly separable; the fit
    # still converges (the extrapolated SAGA iterates), and warns of nothing.
    assert not caught
    assert clf.n_iter_ < clf.max_iter


# ------------------------------------------------------------ composition


def test_grid_search_in_pipeline_picks_a_model(iris):
    X, y = load_iris(return_X_y=True)
    pipe = Pipeline([("scale", StandardScaler()), ("clf", SoftmaxRegressor(random_state=0))])
    grid = {"clf__eta0": [0.01, 0.3], "clf__alpha": [1e-4, 1.0]}
    search = GridSearchCV(pipe, grid, cv=3, n_jobs=2).fit(X, y)
    assert set(search.best_params_) == set(grid)
    assert search.best_params_["clf__alpha"] == 1e-4  # alpha=1 underfits iris
    assert search.best_score_ > 0.9
    assert search.best_estimator_.score(X, y) > 0.9
    # the parallel search scored exactly as a sequential one
    sequential = GridSearchCV(pipe, grid, cv=3, n_jobs=1).fit(X, y)
    assert_array_equal(
        search.cv_results_["mean_test_score"], sequential.cv_results_["mean_test_score"]
    )


def test_cross_val_score_is_deterministic():
    X, y = load_iris(return_X_y=True)
    pipe = Pipeline([("scale", StandardScaler()), ("clf", SoftmaxRegressor(random_state=0))])
    scores = cross_val_score(pipe, X, y, cv=3)
    assert_array_equal(scores, cross_val_score(pipe, X, y, cv=3))
    assert scores.min() > 0.85


def test_clone_refits_identically(iris, fitted):
    X, y = iris
    copy = clone(fitted)
    assert not hasattr(copy, "coef_")
    copy.fit(X, y)
    assert_array_equal(copy.coef_, fitted.coef_)
    assert_array_equal(copy.predict_proba(X), fitted.predict_proba(X))


@pytest.mark.parametrize("how", ["pickle", "joblib"])
def test_round_trip_predicts_and_trains_on_identically(iris, tmp_path, how):
    X, y = iris
    clf = SoftmaxRegressor(random_state=0, momentum=0.5, average=True, max_iter=5, tol=None)
    clf.fit(X, y)
    if how == "pickle":
        restored = pickle.loads(pickle.dumps(clf))
    else:
        joblib.dump(clf, tmp_path / "model.joblib")
        restored = joblib.load(tmp_path / "model.joblib")
    for method in ("predict", "predict_proba", "predict_log_proba", "decision_function"):
        assert_array_equal(getattr(restored, method)(X), getattr(clf, method)(X))
    # the optimiser state (t, momentum, averages, shuffling RNG) survives too
    clf.partial_fit(X, y)
    restored.partial_fit(X, y)
    assert restored.t_ == clf.t_
    assert_array_equal(restored.coef_, clf.coef_)


# ------------------------------------------------------------ sample weights


def test_integer_weights_are_repeated_rows(iris):
    X, y = iris
    counts = np.random.RandomState(0).randint(1, 4, size=len(y))
    weighted = SoftmaxRegressor(**FULL_BATCH).fit(X, y, sample_weight=counts)
    repeated = SoftmaxRegressor(**FULL_BATCH).fit(np.repeat(X, counts, 0), np.repeat(y, counts))
    _assert_same_model(weighted, repeated)
    # and they matter
    unweighted = SoftmaxRegressor(**FULL_BATCH).fit(X, y)
    assert np.abs(unweighted.coef_ - weighted.coef_).max() > 1e-3


def test_zero_weight_is_a_removed_row(iris):
    X, y = iris
    sample_weight = np.ones(len(y))
    sample_weight[::4] = 0
    weighted = SoftmaxRegressor(**FULL_BATCH).fit(X, y, sample_weight=sample_weight)
    keep = sample_weight > 0
    removed = SoftmaxRegressor(**FULL_BATCH).fit(X[keep], y[keep])
    _assert_same_model(weighted, removed)


def test_auto_step_treats_weights_as_repetitions():
    """eta0="auto" estimates the curvature of the weighted data, not of the raw rows."""
    X, y = standardised("wine")
    X, y = X[::2], y[::2]  # small enough that the step is estimated on every row
    counts = np.random.RandomState(1).randint(0, 3, size=len(y))
    params = dict(FULL_BATCH, eta0="auto")
    weighted = SoftmaxRegressor(**params).fit(X, y, sample_weight=counts)
    repeated = SoftmaxRegressor(**params).fit(np.repeat(X, counts, 0), np.repeat(y, counts))
    _assert_same_model(weighted, repeated, rtol=1e-8, atol=1e-10)


def test_balanced_class_weight_is_its_sample_weight(iris):
    X, y = iris
    X, y = X[20:], y[20:]  # class 0 is rarer
    balanced = SoftmaxRegressor(class_weight="balanced", **FULL_BATCH).fit(X, y)
    weights = compute_class_weight("balanced", classes=np.unique(y), y=y)
    explicit = SoftmaxRegressor(**FULL_BATCH).fit(X, y, sample_weight=weights[y])
    _assert_same_model(balanced, explicit)
    plain = SoftmaxRegressor(**FULL_BATCH).fit(X, y)
    assert np.abs(plain.coef_ - balanced.coef_).max() > 1e-3


def test_dict_class_weight_multiplies_sample_weight(iris):
    X, y = iris
    class_weight = {0: 3.0, 1: 0.5, 2: 1.0}
    sample_weight = np.random.RandomState(0).uniform(0.5, 2.0, size=len(y))
    with_dict = SoftmaxRegressor(class_weight=class_weight, **FULL_BATCH)
    with_dict.fit(X, y, sample_weight=sample_weight)
    per_row = np.array([class_weight[label] for label in y]) * sample_weight
    explicit = SoftmaxRegressor(**FULL_BATCH).fit(X, y, sample_weight=per_row)
    _assert_same_model(with_dict, explicit)


def test_sample_weight_scale_does_not_matter(iris):
    """The objective is normalised by sum(s): scaling all weights changes nothing."""
    X, y = iris
    sample_weight = np.random.RandomState(0).uniform(0.5, 2.0, size=len(y))
    a = SoftmaxRegressor(random_state=0).fit(X, y, sample_weight=sample_weight)
    b = SoftmaxRegressor(random_state=0).fit(X, y, sample_weight=8 * sample_weight)
    _assert_same_model(a, b, rtol=1e-9, atol=1e-11)


# ------------------------------------------------------------ sparse input


@pytest.fixture(scope="module")
def sparse_problem():
    rng = np.random.RandomState(0)
    X = sp.random(300, 40, density=0.1, format="csr", random_state=rng)
    X.data = rng.normal(size=X.nnz)
    y = rng.randint(0, 3, size=300)
    return X, y


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"momentum": 0.9, "nesterov": True},
        {"average": 100},
        {"learning_rate": "optimal", "alpha": 1e-3},
        {"batch_size": 1000, "shuffle": False},
        {"alpha": 0.0},
    ],
    ids=["default", "nesterov", "average", "optimal", "full-batch", "no-penalty"],
)
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_sparse_and_dense_give_the_same_model(sparse_problem, params, weighted):
    X, y = sparse_problem
    sample_weight = np.random.RandomState(1).uniform(0, 2, size=len(y)) if weighted else None
    # solver="sgd": "auto" trains dense X by SAGA, sparse X by SGD.
    kwargs = dict(random_state=0, max_iter=20, tol=None, solver="sgd", **params)
    dense = SoftmaxRegressor(**kwargs).fit(X.toarray(), y, sample_weight=sample_weight)
    sparse = SoftmaxRegressor(**kwargs).fit(X, y, sample_weight=sample_weight)
    _assert_same_model(sparse, dense, rtol=1e-10, atol=1e-10)
    assert sparse.t_ == dense.t_
    assert_allclose(sparse.loss_curve_, dense.loss_curve_, rtol=1e-10)
    assert_allclose(sparse.predict_proba(X), dense.predict_proba(X.toarray()), atol=1e-10)


def test_sparse_binary_partial_fit_matches_dense(sparse_problem):
    X, y = sparse_problem
    y = (y > 0).astype(int)
    dense, sparse = SoftmaxRegressor(random_state=0), SoftmaxRegressor(random_state=0)
    for chunk in (slice(0, 150), slice(150, 300)):
        dense.partial_fit(X[chunk].toarray(), y[chunk], classes=[0, 1])
        sparse.partial_fit(X[chunk], y[chunk], classes=[0, 1])
    assert sparse.coef_.shape == (1, X.shape[1])
    _assert_same_model(sparse, dense, rtol=1e-10, atol=1e-10)


@pytest.fixture
def no_densify(monkeypatch):
    """Make every way of densifying a scipy sparse matrix or array raise."""

    def refuse(*args, **kwargs):
        raise AssertionError("a sparse input was densified")

    for cls in (sp.csr_matrix, sp.csr_array, sp.csc_matrix, sp.csc_array, sp.coo_matrix):
        for method in ("toarray", "todense", "__array__"):
            monkeypatch.setattr(cls, method, refuse, raising=False)


def test_sparse_fit_and_predict_never_densify(sparse_problem, no_densify):
    X, y = sparse_problem
    with pytest.raises(AssertionError, match="densified"):  # the guard works
        X.toarray()
    clf = SoftmaxRegressor(random_state=0, max_iter=3, tol=None, early_stopping=True)
    clf.fit(X, y, sample_weight=np.ones(len(y)))
    clf.set_params(early_stopping=False).partial_fit(X, y)
    clf.predict_proba(X)
    clf.predict(X)


def test_sparse_fit_memory_stays_far_below_dense_size():
    rng = np.random.RandomState(0)
    n_samples, n_features, nnz_per_row = 2000, 20_000, 10  # dense float64: 320 MB
    X = sp.csr_matrix(
        (
            rng.normal(size=n_samples * nnz_per_row),
            rng.randint(0, n_features, size=n_samples * nnz_per_row),
            np.arange(0, n_samples * nnz_per_row + 1, nnz_per_row),
        ),
        shape=(n_samples, n_features),
    )
    y = rng.randint(0, 3, size=n_samples)
    dense_nbytes = n_samples * n_features * 8
    tracemalloc.start()
    try:
        SoftmaxRegressor(random_state=0, max_iter=2, tol=None).fit(X, y)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < dense_nbytes / 50


# ------------------------------------------------------------ bad input


def _state(estimator):
    """Everything an estimator holds, byte for byte."""
    return pickle.dumps(estimator.__dict__)


def _assert_unchanged(estimator, before, coef, intercept, t, n_iter):
    assert_array_equal(estimator.coef_, coef)
    assert_array_equal(estimator.intercept_, intercept)
    assert estimator.t_ == t and estimator.n_iter_ == n_iter
    assert _state(estimator) == before


@pytest.fixture
def fitted_copy(fitted):
    return pickle.loads(pickle.dumps(fitted))


def _bad_inputs(X, y):
    X_nan = X.copy()
    X_nan[3, 1] = np.nan
    X_inf = X.copy()
    X_inf[5, 2] = np.inf
    negative = np.ones(len(y))
    negative[7] = -1.0
    return {
        "nan": ({}, lambda m: m.fit(X_nan, y), ValueError, "NaN"),
        "inf": ({}, lambda m: m.fit(X_inf, y), ValueError, "infinity"),
        "1d-X": ({}, lambda m: m.fit(X[:, 0], y), ValueError, "Expected 2D array"),
        "one-class": ({}, lambda m: m.fit(X, np.full(len(y), 2)), ValueError, "only one class: 2"),
        "continuous-y": ({}, lambda m: m.fit(X, X[:, 0]), ValueError, "Unknown label type"),
        # these fail after validation has recorded the new width / classes
        "one-class-other-width": (
            {},
            lambda m: m.fit(X[:, :3], np.full(len(y), 2)),
            ValueError,
            "only one class",
        ),
        "new-labels-zero-weights": (
            {},
            lambda m: m.fit(X, y + 10, sample_weight=np.zeros(len(y))),
            ValueError,
            "non-zero",
        ),
        "negative-weight": (
            {},
            lambda m: m.fit(X, y, sample_weight=negative),
            ValueError,
            "Negative values",
        ),
        "zero-weights": (
            {},
            lambda m: m.fit(X, y, sample_weight=np.zeros(len(y))),
            ValueError,
            "non-zero",
        ),
        "one-weighted-class": (
            {},
            lambda m: m.fit(X, y, sample_weight=(y == 0).astype(float)),
            ValueError,
            "at least 2 classes",
        ),
        "coef_init-shape": (
            {},
            lambda m: m.fit(X, y, coef_init=np.zeros((2, X.shape[1]))),
            ValueError,
            r"coef_init has shape \(2, 4\)",
        ),
        "partial_fit-unknown-label": (
            {},
            lambda m: m.partial_fit(X, np.where(y == 2, 5, y)),
            ValueError,
            r"labels \[5\].*not in classes",
        ),
        "partial_fit-classes-changed": (
            {},
            lambda m: m.partial_fit(X, y, classes=[0, 1, 2, 3]),
            ValueError,
            "not the same as on the first call",
        ),
        "partial_fit-n_features": (
            {},
            lambda m: m.partial_fit(X[:, :3], y),
            ValueError,
            "X has 3 features, but SoftmaxRegressor is expecting 4",
        ),
        "partial_fit-nan": ({}, lambda m: m.partial_fit(X_nan, y), ValueError, "NaN"),
        "invalid-param": (
            {"batch_size": 0},
            lambda m: m.fit(X, y),
            ValueError,  # InvalidParameterError is a ValueError
            "batch_size",
        ),
        "nesterov-without-momentum": (
            {"nesterov": True},
            lambda m: m.fit(X, y),
            ValueError,
            "momentum",
        ),
        "optimal-without-alpha": (
            {"learning_rate": "optimal", "alpha": 0.0},
            lambda m: m.fit(X, y),
            ValueError,
            "alpha",
        ),
        "warm-start-other-classes": (
            {"warm_start": True},
            lambda m: m.fit(X[y < 2], y[y < 2]),
            ValueError,
            "classes of the previous fit",
        ),
        "warm-start-fewer-features": (
            {"warm_start": True},
            lambda m: m.fit(X[:, :3], y),
            ValueError,
            "X has 3 features, but warm_start=True continues the previous fit, which had 4",
        ),
        "warm-start-fewer-features-sparse": (
            {"warm_start": True},
            lambda m: m.fit(sp.csr_matrix(X[:, :3]), y),
            ValueError,
            "X has 3 features, but warm_start=True continues the previous fit, which had 4",
        ),
        "warm-start-more-features-sparse": (
            {"warm_start": True},
            lambda m: m.fit(sp.csr_matrix(np.hstack([X, X[:, :1]])), y),
            ValueError,
            "X has 5 features, but warm_start=True continues the previous fit, which had 4",
        ),
        "partial_fit-balanced": (
            {"class_weight": "balanced"},
            lambda m: m.partial_fit(X, y),
            ValueError,
            "balanced",
        ),
    }


_BAD_INPUT_NAMES = list(_bad_inputs(np.zeros((10, 4)), np.arange(10) % 3))


@pytest.mark.parametrize("case", _BAD_INPUT_NAMES)
def test_bad_input_raises_and_leaves_fitted_model_unchanged(iris, fitted_copy, case):
    X, y = iris
    params, call, error, message = _bad_inputs(X, y)[case]
    model = fitted_copy.set_params(**params)
    coef, intercept = model.coef_.copy(), model.intercept_.copy()
    t, n_iter = model.t_, model.n_iter_
    before = _state(model)
    with pytest.raises(error, match=message):
        call(model)
    _assert_unchanged(model, before, coef, intercept, t, n_iter)
    assert model.score(X, y) > 0.9  # still a working model


def test_bad_input_on_unfitted_model_leaves_it_unfitted(iris):
    X, y = iris
    model = SoftmaxRegressor()
    with pytest.raises(ValueError, match="at least 2 classes"):
        model.fit(X, np.zeros(len(y)))
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        model.partial_fit(X, y)
    with pytest.raises(ValueError, match=r"labels \[7\].*not in classes"):
        model.partial_fit(X, np.where(y == 0, 7, y), classes=[0, 1, 2])
    assert not hasattr(model, "classes_") and not hasattr(model, "coef_")
    assert model.__dict__ == SoftmaxRegressor().__dict__


@pytest.mark.parametrize(
    "method", ["predict", "predict_proba", "predict_log_proba", "decision_function", "score"]
)
def test_not_fitted(iris, method):
    X, y = iris
    args = (X, y) if method == "score" else (X,)
    with pytest.raises(NotFittedError, match="not fitted yet"):
        getattr(SoftmaxRegressor(), method)(*args)


@pytest.mark.parametrize(
    "method", ["predict", "predict_proba", "predict_log_proba", "decision_function"]
)
def test_predict_checks_n_features_and_finiteness(iris, fitted, method):
    X, _ = iris
    with pytest.raises(ValueError, match="X has 3 features, but SoftmaxRegressor is expecting 4"):
        getattr(fitted, method)(X[:, :3])
    X_nan = X.copy()
    X_nan[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        getattr(fitted, method)(X_nan)


@pytest.fixture(scope="module")
def digits():
    return standardised("digits")


def test_diverging_step_raises_and_leaves_fitted_model_unchanged(digits):
    X, y = digits
    model = SoftmaxRegressor(random_state=0, max_iter=3, tol=None).fit(X, y)
    coef, intercept = model.coef_.copy(), model.intercept_.copy()
    t, n_iter = model.t_, model.n_iter_
    # A step the user chose (the adaptive one backs off by itself instead).
    model.set_params(eta0=1e6, learning_rate="constant")
    before = _state(model)
    with pytest.raises(ValueError, match=r"diverged.*eta0=1000000\.0.*smaller eta0"):
        model.fit(X, y)
    _assert_unchanged(model, before, coef, intercept, t, n_iter)


@pytest.mark.parametrize("call", ["fit", "partial_fit"])
def test_a_diverging_last_update_is_caught(call):
    """Raw iris, one epoch of two batches: the second update throws the logits
    past 1e15, and no later batch computes logits to notice."""
    X, y = load_iris(return_X_y=True)
    model = SoftmaxRegressor(
        eta0=1e12, learning_rate="constant", max_iter=1, tol=None, random_state=0
    )
    with pytest.raises(ValueError, match=r"diverged in epoch 1.*eta0=1000000000000\.0"):
        if call == "fit":
            model.fit(X, y)
        else:
            model.partial_fit(X, y, classes=[0, 1, 2])
    assert model.__dict__ == clone(model).__dict__


def test_diverging_first_partial_fit_leaves_model_unfitted(digits):
    X, y = digits
    model = SoftmaxRegressor(eta0=1e6, learning_rate="constant", random_state=0)
    with pytest.raises(ValueError, match=r"diverged.*eta0=1000000\.0"):
        model.partial_fit(X, y, classes=np.unique(y))
    assert model.__dict__ == clone(model).__dict__


def test_diverging_partial_fit_leaves_model_unchanged(digits):
    """A wildly mis-scaled chunk blows the logits up; the model keeps its state."""
    X, y = digits
    model = SoftmaxRegressor(eta0=0.5, learning_rate="constant", random_state=0)
    model.partial_fit(X, y, classes=np.unique(y))
    coef, intercept = model.coef_.copy(), model.intercept_.copy()
    t, n_iter = model.t_, model.n_iter_
    before = _state(model)
    with pytest.raises(ValueError, match=r"diverged.*eta0=0\.5.*StandardScaler"):
        model.partial_fit(X * 1e10, y)
    _assert_unchanged(model, before, coef, intercept, t, n_iter)
    model.partial_fit(X, y)  # and training goes on from the old state
    assert model.t_ == t + len(y)


# ------------------------------------------------------------ dtypes


class _DtypeSpy(softmax_module.EpochEngine):
    """Records the dtypes of the floating-point arrays the epoch engine trains on."""

    seen = []

    def run_epoch(self, *args, **kwargs):
        floats = {
            arg.dtype
            for arg in (*args, *kwargs.values())
            if hasattr(arg, "dtype") and np.issubdtype(arg.dtype, np.floating)
        }
        type(self).seen.append(frozenset(floats))
        return super().run_epoch(*args, **kwargs)


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "csr"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_trains_and_predicts_in_input_dtype(iris, monkeypatch, dtype, sparse):
    X, y = iris
    X = X.astype(dtype)
    if sparse:
        X = sp.csr_matrix(X)
    monkeypatch.setattr(softmax_module, "EpochEngine", _DtypeSpy)
    _DtypeSpy.seen = []
    sample_weight = np.random.RandomState(0).uniform(0.5, 2, size=len(y))  # float64
    clf = SoftmaxRegressor(random_state=0, max_iter=5, tol=None)
    clf.fit(X, y, sample_weight=sample_weight)
    clf.partial_fit(X, y)
    assert len(_DtypeSpy.seen) == 6  # 5 epochs of fit, 1 of partial_fit
    # X, coef, intercept and the sample weights: all in the input's dtype
    assert set(_DtypeSpy.seen) == {frozenset({np.dtype(dtype)})}
    assert clf.coef_.dtype == dtype and clf.intercept_.dtype == dtype
    for method in ("predict_proba", "predict_log_proba", "decision_function"):
        assert getattr(clf, method)(X).dtype == dtype


def test_float32_model_close_to_float64_model(iris):
    """Epoch for epoch, plain steps in float32 follow float64's. The default fit
    extrapolates SAGA's iterates, which amplifies rounding (the trajectories part
    after a few cycles: 1.4e-3 in predict_proba after 30 epochs on iris), so there
    the two land at the same objective rather than on the same path."""
    X, y = iris
    params = dict(random_state=0, max_iter=30, tol=None, solver="sgd")
    single = SoftmaxRegressor(**params).fit(X.astype(np.float32), y)
    double = SoftmaxRegressor(**params).fit(X, y)
    assert_allclose(single.coef_, double.coef_, rtol=1e-3, atol=1e-4)
    assert_allclose(single.predict_proba(X), double.predict_proba(X), atol=1e-4)
    single = SoftmaxRegressor(random_state=0).fit(X.astype(np.float32), y)
    double = SoftmaxRegressor(random_state=0).fit(X, y)
    f_single = objective(single.coef_.astype(np.float64), single.intercept_, X, y, alpha=1e-4)
    f_double = objective(double.coef_, double.intercept_, X, y, alpha=1e-4)
    assert f_single == pytest.approx(f_double, rel=1e-3)
    assert single.coef_.dtype == np.float32


def test_integer_input_trains_in_float64(iris):
    X, y = iris
    clf = SoftmaxRegressor(random_state=0, max_iter=5, tol=None).fit((X * 10).astype(int), y)
    assert clf.coef_.dtype == np.float64


def test_partial_fit_keeps_the_first_dtype(iris):
    X, y = iris
    clf = SoftmaxRegressor(random_state=0).partial_fit(X.astype(np.float32), y, classes=[0, 1, 2])
    clf.partial_fit(X, y)  # float64 chunk: converted, not upcasting the model
    assert clf.coef_.dtype == np.float32


def test_dataframe_sets_feature_names(iris):
    pd = pytest.importorskip("pandas")
    X, y = iris
    columns = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    frame = pd.DataFrame(X, columns=columns)
    clf = SoftmaxRegressor(random_state=0).fit(frame, pd.Series(y))
    assert_array_equal(clf.feature_names_in_, columns)
    assert clf.n_features_in_ == 4
    assert_array_equal(clf.predict(frame), SoftmaxRegressor(random_state=0).fit(X, y).predict(X))
    with pytest.raises(ValueError, match="feature names"):
        clf.predict(frame[columns[::-1]])
    assert not hasattr(SoftmaxRegressor(random_state=0).fit(X, y), "feature_names_in_")


# ------------------------------------------------------------ labels and outputs


@pytest.mark.parametrize(
    "labels",
    [
        np.array(["setosa", "versicolor", "virginica"]),
        np.array([3, 7, 11]),
        np.array([-1.0, 0.0, 2.0]),
        np.array([True, False]),
        np.array(["no", "yes"], dtype=object),
    ],
    ids=["str", "sparse-int", "float", "bool", "object-binary"],
)
def test_labels_are_mapped_not_assumed(iris, labels):
    """Any label set trains the model of its rank codes, and predicts labels."""
    X, y = iris
    if len(labels) == 2:
        X, y = X[y > 0], y[y > 0] - 1
    codes_model = SoftmaxRegressor(random_state=0).fit(X, y)
    sorted_labels = np.sort(labels)
    clf = SoftmaxRegressor(random_state=0).fit(X, sorted_labels[y])
    assert_array_equal(clf.classes_, sorted_labels)
    assert_array_equal(clf.coef_, codes_model.coef_)
    assert_array_equal(clf.predict(X), sorted_labels[codes_model.predict(X)])
    assert clf.score(X, sorted_labels[y]) == codes_model.score(X, y)


def test_partial_fit_with_string_labels(iris):
    X, y = iris
    names = np.array(["a", "b", "c"])
    clf = SoftmaxRegressor(random_state=0)
    for chunk in np.array_split(np.random.RandomState(0).permutation(len(y)), 3):
        clf.partial_fit(X[chunk], names[y[chunk]], classes=["c", "a", "b"])
    assert_array_equal(clf.classes_, names)
    assert clf.n_iter_ == 3
    assert clf.score(X, names[y]) > 0.8


@pytest.mark.parametrize("name", ["iris", "breast_cancer"])
def test_output_shapes_and_consistency(name):
    X, y = standardised(name)
    clf = SoftmaxRegressor(random_state=0).fit(X, y)
    n_classes = len(np.unique(y))
    decision = clf.decision_function(X)
    proba = clf.predict_proba(X)
    log_proba = clf.predict_log_proba(X)
    if n_classes == 2:
        assert clf.coef_.shape == (1, X.shape[1]) and clf.intercept_.shape == (1,)
        assert decision.shape == (len(y),)
        assert_allclose(decision, X @ clf.coef_[0] + clf.intercept_[0])
        assert_array_equal(clf.predict(X), clf.classes_[(decision > 0).astype(int)])
    else:
        assert clf.coef_.shape == (n_classes, X.shape[1])
        assert decision.shape == (len(y), n_classes)
        assert_allclose(decision, X @ clf.coef_.T + clf.intercept_)
    assert proba.shape == log_proba.shape == (len(y), n_classes)
    assert_allclose(proba.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    assert_allclose(np.exp(log_proba), proba, rtol=1e-12, atol=1e-15)
    assert_array_equal(clf.predict(X), clf.classes_[np.argmax(proba, axis=1)])


@pytest.mark.parametrize("name", ["iris", "breast_cancer"])
def test_log_proba_finite_where_proba_underflows(name):
    X, y = standardised(name)
    clf = SoftmaxRegressor(random_state=0).fit(X, y)
    X_far = X * 1e4  # logits in the thousands
    proba = clf.predict_proba(X_far)
    log_proba = clf.predict_log_proba(X_far)
    assert np.any(proba == 0)  # exp underflows ...
    assert np.all(np.isfinite(log_proba))  # ... the log-sum-exp does not
    assert np.all(log_proba <= 0)
    # brute force in float64 from the logits
    Z = np.atleast_2d(clf.decision_function(X_far).T).T
    if Z.shape[1] == 1:
        Z = np.hstack([np.zeros_like(Z), Z])
    # atol: where a probability is within 1e-180 of 1 its log is a tiny number,
    # which scipy and we round differently (to 0, or to the value itself).
    expected = Z - logsumexp(Z, axis=1, keepdims=True)
    assert_allclose(log_proba, expected, rtol=1e-12, atol=1e-12)
    assert_array_equal(clf.predict(X_far), clf.classes_[np.argmax(log_proba, axis=1)])
