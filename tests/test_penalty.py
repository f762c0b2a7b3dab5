"""The L1 / elastic-net penalty: one rule on every training path, and the optimum it reaches.

Oracles: ``LogisticRegression(solver="saga", l1_ratio=r)`` for the optimum and
its zeros; the optimality (KKT) conditions of the penalised objective, from
the reference gradient of :mod:`sksoftmax._loss`; and a brute-force numpy
epoch, written here from the formulas of :mod:`sksoftmax._penalty`'s docstring,
that every engine path must reproduce batch for batch.
"""

import copy
import functools
import pickle
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.datasets import load_digits, load_iris, load_wine
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from test_engine import make_problem

from sksoftmax import SoftmaxRegressor
from sksoftmax import _engine as engine_module
from sksoftmax._cli import _elastic_net_options
from sksoftmax._engine import EpochEngine
from sksoftmax._loss import gradient, objective
from sksoftmax._optim import SAGAMemory, SGDOptimizer
from sksoftmax._penalty import Penalty

ALPHA = 1e-2


@functools.cache
def _standardised(name):
    loader = {"iris": load_iris, "wine": load_wine, "digits": load_digits}[name]
    X, y = loader(return_X_y=True)
    if name == "digits":  # a third of digits: the oracle's saga takes 8-22 s on all of it
        X, y = X[::3], y[::3]
    return StandardScaler().fit_transform(X), y


@functools.cache
def _oracle(name, l1_ratio):
    """LogisticRegression's saga at a tight tolerance: (coef, objective)."""
    X, y = _standardised(name)
    lr = LogisticRegression(
        solver="saga", C=1.0 / (ALPHA * len(y)), tol=1e-8, max_iter=100_000,
        **_elastic_net_options(l1_ratio),
    ).fit(X, y)  # fmt: skip
    value = objective(lr.coef_, lr.intercept_, X, y, alpha=ALPHA, l1_ratio=l1_ratio)
    return lr.coef_, value


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "csr"])
@pytest.mark.parametrize("l1_ratio", [0.0, 0.5, 1.0])
@pytest.mark.parametrize("name", ["iris", "wine", "digits"])
def test_fit_reaches_logistic_regression_optimum(name, l1_ratio, sparse, dtype):
    X, y = _standardised(name)
    oracle_coef, oracle_value = _oracle(name, l1_ratio)
    X_in = X.astype(dtype)
    X_in = sp.csr_matrix(X_in) if sparse else X_in
    model = SoftmaxRegressor(
        penalty="elasticnet",
        l1_ratio=l1_ratio,
        alpha=ALPHA,
        tol=1e-6,
        max_iter=5000,
        random_state=0,
    ).fit(X_in, y)
    coef = np.asarray(model.coef_, dtype=np.float64)
    value = objective(
        coef, model.intercept_.astype(np.float64), X, y, alpha=ALPHA, l1_ratio=l1_ratio
    )
    assert (value - oracle_value) / oracle_value < 1e-3
    assert value > oracle_value * (1 - 1e-6)  # not below the optimum: the oracle is one
    if l1_ratio == 1.0:
        same_zeros = np.mean((coef == 0) == (oracle_coef == 0))
        assert same_zeros >= 0.95
        assert (coef == 0).sum() >= 0.5 * (oracle_coef == 0).sum() > 0


def _kkt_violation(model, X, y, penalty):
    """Largest violation of the optimality conditions of the penalised objective.

    With ``g`` the smooth part's gradient (cross-entropy and L2): ``g + l1 sign(w)
    = 0`` where ``w != 0`` and ``|g| <= l1`` where ``w == 0``; the intercept's
    gradient is 0.
    """
    coef, intercept = model.coef_.astype(np.float64), model.intercept_.astype(np.float64)
    g, g_intercept = gradient(coef, intercept, X, y, None, penalty.l2)
    off_zero = np.abs(g + penalty.l1 * np.sign(coef))
    at_zero = np.maximum(np.abs(g) - penalty.l1, 0.0)
    violation = np.where(coef != 0, off_zero, at_zero)
    return max(violation.max(), np.abs(g_intercept).max())


@pytest.mark.parametrize("penalty", ["l1", "elasticnet"])
@pytest.mark.parametrize("n_classes", [2, 3])
def test_fit_satisfies_optimality_conditions(penalty, n_classes):
    X, y = make_problem(300, 12, n_classes, np.float64, sparse=False, seed=3)
    params = dict(penalty=penalty, alpha=0.05, l1_ratio=0.5, tol=1e-8, max_iter=5000)
    model = SoftmaxRegressor(**params, random_state=0).fit(X, y)
    assert _kkt_violation(model, X, y, Penalty(0.05, penalty, 0.5)) < 1e-4
    assert (model.coef_ == 0).any()  # alpha this large zeroes some weights


def test_l1_zeros_the_features_that_carry_nothing():
    rng = np.random.default_rng(0)
    X_informative, y = make_problem(1000, 5, 3, np.float64, sparse=False, seed=1)
    X = np.hstack([X_informative, rng.standard_normal((1000, 20))])
    model = SoftmaxRegressor(penalty="l1", alpha=0.03, random_state=0).fit(X, y)
    assert (model.coef_[:, 5:] == 0).mean() > 0.9
    assert (model.coef_[:, :5] != 0).mean() > 0.5


def test_penalty_names_are_special_cases_of_elasticnet():
    X, y = make_problem(200, 6, 3, np.float64, sparse=False)
    fit = functools.partial(_fit_coef, X, y)
    assert_array_equal(fit(penalty="l2"), fit(penalty="elasticnet", l1_ratio=0.0))
    assert_array_equal(fit(penalty="l1"), fit(penalty="elasticnet", l1_ratio=1.0))
    assert_array_equal(fit(penalty=None), fit(penalty="l2", alpha=0.0))
    # l1_ratio is ignored unless penalty="elasticnet", as in SGDClassifier.
    assert_array_equal(fit(penalty="l2", l1_ratio=0.9), fit(penalty="l2"))


def _fit_coef(X, y, **params):
    params = dict(dict(alpha=ALPHA, max_iter=30, tol=None, random_state=0), **params)
    return SoftmaxRegressor(**params).fit(X, y).coef_


# ---------------------------------------------------------------- one rule, every path


def reference_penalised_epoch(X, y, order, coef, intercept, optimizer, penalty, batch_size, rule):
    """Brute-force minibatch epoch with the penalty, from the formulas alone.

    ``rule`` is "proximal" (soft-thresholding every weight) or "cumulative" on
    "all" weights (dense epochs) or on the features of the batch (``"nonzero"``,
    the lazy sparse epochs). Plain SGD with a constant step, no centring.
    """
    X = X.toarray() if sp.issparse(X) else X
    coef, intercept = coef.astype(np.float64), intercept.astype(np.float64)
    eta = optimizer.current_eta()
    total = optimizer.l1_total
    applied = np.zeros_like(coef) if optimizer.l1_applied is None else optimizer.l1_applied.copy()
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        share = len(rows) / batch_size
        g_coef, g_intercept = gradient(coef, intercept, X[rows], y[rows], None, 0.0)
        coef = coef - eta * share * (g_coef + penalty.l2 * coef)
        intercept = intercept - eta * share * g_intercept
        threshold = eta * penalty.l1 * share
        if rule == "proximal":
            coef = np.sign(coef) * np.maximum(np.abs(coef) - threshold, 0.0)
            continue
        total += threshold
        touched = np.ones(X.shape[1], bool) if rule == "all" else (X[rows] != 0).any(axis=0)
        for c, j in zip(*np.nonzero(np.broadcast_to(touched, coef.shape)), strict=True):
            w = coef[c, j]
            if w > 0:
                coef[c, j] = max(0.0, w - (total + applied[c, j]))
            elif w < 0:
                coef[c, j] = min(0.0, w + (total - applied[c, j]))
            applied[c, j] += coef[c, j] - w
    return coef, intercept, applied, total


def _force(monkeypatch, compiled):
    if compiled:
        pytest.importorskip("numba")
        monkeypatch.delenv("SKSOFTMAX_NUMBA", raising=False)
        monkeypatch.setattr(engine_module, "COMPILED_MIN_SIZE", 0)
    else:
        monkeypatch.setenv("SKSOFTMAX_NUMBA", "0")


PATHS = [
    # (X kind, compiled, rule): each training path that applies an L1 part.
    ("dense", False, "cumulative"),
    ("dense", True, "cumulative"),
    ("dense", False, "proximal"),
    ("dense", True, "proximal"),
    ("csr", False, "cumulative"),  # the lazy numpy sparse epoch
    ("csr", True, "cumulative"),  # the compiled sparse epoch
    ("csr", False, "proximal"),  # SAGA's dense update of CSR
]


def _epoch_inputs(kind, n_classes, dtype, seed=0):
    X, y = make_problem(203, 9, n_classes, dtype, sparse=kind == "csr", seed=seed)
    rng = np.random.default_rng(seed)
    n_params = 1 if n_classes == 2 else n_classes
    coef = (0.3 * rng.standard_normal((n_params, 9))).astype(dtype)
    coef[:, ::3] = 0.0  # weights at zero, which the penalty must keep or release
    intercept = (0.1 * rng.standard_normal(n_params)).astype(dtype)
    if kind == "csr":
        coef = np.asfortranarray(coef)  # as sparse training keeps it
    return X, y, rng.permutation(len(y)), coef, intercept


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("penalty", ["l1", "elasticnet"])
@pytest.mark.parametrize("n_classes", [2, 4])
@pytest.mark.parametrize("kind, compiled, rule", PATHS)
def test_every_path_applies_the_one_penalty_rule(
    monkeypatch, kind, compiled, rule, n_classes, penalty, dtype
):
    """Two epochs on each path against the brute-force epoch: the second starts
    from the first one's cumulative-penalty state, as partial_fit does."""
    _force(monkeypatch, compiled)
    X, y, order, coef, intercept = _epoch_inputs(kind, n_classes, dtype)
    the_penalty = Penalty(0.3, penalty, 0.5)  # large enough to hold weights at zero
    batch_size = 32
    optimizer = SGDOptimizer(
        [coef, intercept], learning_rate="constant", eta0=0.2, power_t=0.5, alpha=0.05
    )
    engine = EpochEngine(X, coef.shape[0], batch_size)
    assert engine.compiled == compiled
    expected_coef, expected_intercept = coef.astype(np.float64), intercept.astype(np.float64)
    expected_optimizer = copy.deepcopy(optimizer)
    for _ in range(2):
        saga = None
        if rule == "proximal":
            # SAGA with an empty memory steps along the plain gradient in its first
            # epoch only: one epoch of it each time, from a fresh memory.
            saga = SAGAMemory(X.shape[0], X.shape[0], coef, intercept, batch_size)
            saga.factor = 0.0  # and no mean gradient: the direction is the batch's own
        engine.run_epoch(
            X, y, None, order, coef, intercept, optimizer,
            penalty=the_penalty, fit_intercept=True, saga=saga,
        )  # fmt: skip
        touched = "all" if kind == "dense" else "nonzero"
        expected_coef, expected_intercept, applied, total = reference_penalised_epoch(
            X, y, order, expected_coef, expected_intercept, expected_optimizer, the_penalty,
            batch_size, "proximal" if rule == "proximal" else touched,
        )  # fmt: skip
        expected_optimizer.l1_applied, expected_optimizer.l1_total = applied, total
    rtol = 1e-9 if dtype == np.float64 else 2e-4
    assert_allclose(coef, expected_coef, rtol=rtol, atol=rtol)
    assert_allclose(intercept, expected_intercept, rtol=rtol, atol=rtol)
    # Exact zeros stay exact on every path (a weight within rounding of zero is not zero).
    assert_array_equal(
        coef == 0, np.abs(expected_coef) < 1e-12 * (1 if dtype == np.float64 else 1e4)
    )
    assert (coef == 0).any()
    if rule == "cumulative":
        assert optimizer.l1_total == pytest.approx(total)
        assert_allclose(optimizer.l1_applied, applied, rtol=rtol, atol=rtol)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize(
    "options", [dict(momentum=0.8), dict(average=True)], ids=["momentum", "average"]
)
@pytest.mark.parametrize("solver", ["sgd", "saga"])
def test_compiled_dense_epoch_matches_numpy_with_penalty(monkeypatch, solver, options, dtype):
    """Momentum and averaging with an L1 part: the average is of the iterates
    the penalty left, the same on both engines."""
    results = []
    for compiled in (False, True):
        _force(monkeypatch, compiled)
        model = SoftmaxRegressor(
            penalty="elasticnet", l1_ratio=0.7, alpha=0.02, solver=solver, max_iter=3,
            tol=None, eta0=0.05, learning_rate="constant", random_state=0, **options,
        )  # fmt: skip
        X, y = make_problem(203, 9, 3, dtype, sparse=False)
        model.fit(X, y)
        results.append(model)
    numpy_model, compiled_model = results
    rtol = 1e-9 if dtype == np.float64 else 2e-4
    assert_allclose(compiled_model.coef_, numpy_model.coef_, rtol=rtol, atol=rtol)
    assert_allclose(compiled_model._raw_coef, numpy_model._raw_coef, rtol=rtol, atol=rtol)
    assert_allclose(compiled_model.intercept_, numpy_model.intercept_, rtol=rtol, atol=rtol)


# ---------------------------------------------------------------- the estimator


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "csr"])
def test_partial_fit_with_l1_continues_exactly_through_pickle(sparse):
    X, y = make_problem(300, 10, 3, np.float64, sparse=sparse)
    chunks = [slice(0, 100), slice(100, 200), slice(200, 300)]
    params = dict(penalty="elasticnet", l1_ratio=0.8, alpha=0.02, random_state=0)
    straight = SoftmaxRegressor(**params)
    resumed = SoftmaxRegressor(**params)
    for i, rows in enumerate(chunks):
        straight.partial_fit(X[rows], y[rows], classes=[0, 1, 2])
        resumed.partial_fit(X[rows], y[rows], classes=[0, 1, 2])
        if i == 0:
            resumed = pickle.loads(pickle.dumps(resumed))
    assert_array_equal(resumed.coef_, straight.coef_)
    assert_array_equal(resumed._optimizer.l1_applied, straight._optimizer.l1_applied)
    assert resumed._optimizer.l1_total == straight._optimizer.l1_total > 0
    assert (straight.coef_ == 0).any()


def test_sparse_sgd_with_l1_is_not_centred_and_matches_dense_zeros():
    """Plain SGD on CSR under L1 trains uncentred (the lazy epoch), and reaches
    a model close to the dense one's."""
    X, y = make_problem(400, 12, 3, np.float64, sparse=True, seed=2)
    params = dict(penalty="l1", alpha=0.02, solver="sgd", random_state=0, max_iter=200)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        sparse_model = SoftmaxRegressor(**params).fit(X, y)
        dense_model = SoftmaxRegressor(**params, fit_intercept=True).fit(X.toarray(), y)
    assert sparse_model._feature_offset is None
    assert dense_model._feature_offset is not None
    value = functools.partial(objective, X=X, y=y, alpha=0.02, l1_ratio=1.0)
    sparse_value = value(sparse_model.coef_, sparse_model.intercept_)
    dense_value = value(dense_model.coef_, dense_model.intercept_)
    assert abs(sparse_value - dense_value) / dense_value < 2e-2
    assert (sparse_model.coef_ == 0).any()


def test_warm_start_with_l1_recentres_sparse_sgd():
    """A CSR model fitted by SAGA (centred) then continued by partial_fit under L1
    (the lazy epoch): the centring is dropped exactly, the predictions do not move."""
    X, y = make_problem(300, 8, 3, np.float64, sparse=True, seed=4)
    model = SoftmaxRegressor(penalty="l1", alpha=0.01, solver="saga", random_state=0).fit(X, y)
    assert model._feature_offset is not None
    before = model.decision_function(X)
    model.set_params(solver="auto", learning_rate="constant", eta0=1e-12)  # moves nothing
    model.partial_fit(X[:50], y[:50])
    assert model._feature_offset is None
    assert_allclose(model.decision_function(X), before, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("bad, message", [
    (dict(penalty="l3"), "penalty"),
    (dict(l1_ratio=1.5), "l1_ratio"),
    (dict(l1_ratio=-0.1), "l1_ratio"),
    (dict(penalty="elasticnet", l1_ratio="half"), "l1_ratio"),
])  # fmt: skip
def test_bad_penalty_parameters_are_named_and_change_nothing(bad, message):
    X, y = make_problem(100, 5, 3, np.float64, sparse=False)
    model = SoftmaxRegressor(max_iter=3, tol=None, random_state=0).fit(X, y)
    coef = model.coef_.copy()
    with pytest.raises(ValueError, match=message):
        model.set_params(**bad).fit(X, y)
    assert_array_equal(model.coef_, coef)


def test_sparsify_and_densify():
    X, y = make_problem(200, 30, 3, np.float64, sparse=False, seed=5)
    model = SoftmaxRegressor(penalty="l1", alpha=0.05, random_state=0).fit(X, y)
    dense_coef = model.coef_.copy()
    proba = model.predict_proba(X)
    assert (dense_coef == 0).mean() > 0.3
    assert model.sparsify() is model
    assert sp.issparse(model.coef_) and model.coef_.format == "csr"
    assert model.coef_.nnz == np.count_nonzero(dense_coef)
    assert_allclose(model.predict_proba(X), proba, rtol=1e-12)
    assert_allclose(model.predict_proba(sp.csr_matrix(X)), proba, rtol=1e-12)
    assert_array_equal(model.predict(X), np.argmax(proba, axis=1))
    restored = pickle.loads(pickle.dumps(model))
    assert_allclose(restored.predict_proba(X), proba, rtol=1e-12)
    assert model.densify() is model
    assert isinstance(model.coef_, np.ndarray)
    assert_array_equal(model.coef_, dense_coef)
    # Training continues from its own copy, and publishes dense weights again.
    model.sparsify().partial_fit(X, y)
    assert isinstance(model.coef_, np.ndarray)
    with pytest.raises(Exception, match="must be fitted before sparsifying"):
        SoftmaxRegressor().sparsify()
    with pytest.raises(Exception, match="must be fitted before densifying"):
        SoftmaxRegressor().densify()


def test_sgdclassifier_parameter_names_are_accepted():
    """What a user copies from SGDClassifier(loss="log_loss", ...) for the concepts
    SoftmaxRegressor has; loss, epsilon and n_jobs it has not (README's map)."""
    from sklearn.linear_model import SGDClassifier

    copied = dict(penalty="elasticnet", alpha=1e-3, l1_ratio=0.3, fit_intercept=True,
                  max_iter=50, tol=1e-3, shuffle=True, verbose=0, random_state=0,
                  learning_rate="adaptive", eta0=0.1, power_t=0.5, early_stopping=False,
                  validation_fraction=0.1, n_iter_no_change=5, class_weight=None,
                  warm_start=False, average=False)  # fmt: skip
    SGDClassifier(loss="log_loss", **copied)  # the same names are SGDClassifier's
    X, y = make_problem(150, 5, 3, np.float64, sparse=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = SoftmaxRegressor(**copied).fit(X, y)
    assert model.get_params()["l1_ratio"] == 0.3
    for missing in ("loss", "epsilon", "n_jobs"):
        assert missing not in model.get_params()


class _DeclaresEveryWeight(SGDOptimizer):
    """A plain-SGD step rule that declares it moves every weight (as a new rule would)."""

    @property
    def moves_every_weight(self):
        return True


@pytest.mark.parametrize("compiled", [False, True], ids=["numpy", "compiled"])
@pytest.mark.parametrize("kind", ["dense", "csr"])
def test_engine_path_follows_what_the_step_rule_declares(monkeypatch, kind, compiled):
    """The engine picks its epoch once, from X and the step rule's declaration, not
    by reading the rule's fields: a rule that declares it moves every weight is
    never given a lazy sparse epoch, and the numpy epoch runs it."""
    _force(monkeypatch, compiled)
    X, y, order, coef, intercept = _epoch_inputs(kind, 3, np.float64)
    if kind == "dense":
        coef = np.ascontiguousarray(coef)
    options = dict(learning_rate="constant", eta0=0.1, power_t=0.5, alpha=0.01)
    engine = EpochEngine(X, 3, 32)
    plain = SGDOptimizer([coef, intercept], **options)
    declared = _DeclaresEveryWeight([coef, intercept], **options)
    momentum = SGDOptimizer([coef, intercept], momentum=0.5, **options)
    saga = SAGAMemory(X.shape[0], X.shape[0], coef, intercept, 32)
    if kind == "dense":
        expected = "compiled dense" if compiled else "numpy"
        assert {engine.path(coef, rule) for rule in (plain, declared, momentum)} == {expected}
        assert engine.path(coef, plain, saga) == expected
        return
    assert engine.path(coef, plain) == ("compiled sparse" if compiled else "lazy sparse")
    assert engine.path(coef, declared) == "numpy"
    assert engine.path(coef, momentum) == ("compiled sparse momentum" if compiled else "numpy")
    assert engine.path(coef, momentum, None, Penalty(0.1, "l1")) == "numpy"
    averaged_momentum = SGDOptimizer([coef, intercept], momentum=0.5, average=True, **options)
    assert engine.path(coef, averaged_momentum) == engine.path(coef, momentum)
    assert engine.path(coef, plain, saga) == ("compiled sparse saga" if compiled else "numpy")
    assert engine.path(coef, plain, saga, Penalty(0.1, "l1")) == "numpy"  # the prox: numpy


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("average", [True, 100], ids=["average", "average-from-100"])
@pytest.mark.parametrize("centred", [False, True], ids=["uncentred", "centred"])
@pytest.mark.parametrize("compiled", [False, True], ids=["numpy", "compiled"])
def test_lazy_sparse_averaging_matches_the_dense_update(
    monkeypatch, compiled, centred, average, dtype
):
    """Averaging on CSR is kept lazily (O(nnz) a batch) by both sparse epochs; under
    L2 it must equal the numpy epoch's dense update of every average, the reference.
    average=100 crosses from copying the iterate to averaging within the epochs."""
    _force(monkeypatch, compiled)
    X, y, order, coef, intercept = _epoch_inputs("csr", 4, dtype, seed=3)
    offset = np.asarray(X.mean(axis=0), dtype=dtype).ravel() if centred else None
    penalty = Penalty(0.05)
    options = dict(learning_rate="constant", eta0=0.3, power_t=0.5, alpha=0.05, average=average)
    lazy_rule = SGDOptimizer([coef, intercept], **options)
    dense_rule = copy.deepcopy(lazy_rule)
    lazy_engine = EpochEngine(X, 4, 32)
    assert lazy_engine.path(coef, lazy_rule) == ("compiled sparse" if compiled else "lazy sparse")
    dense_engine = EpochEngine(X, 4, 32, sparse_kernels=False)
    lazy_w, lazy_b = coef.copy(order="F"), intercept.copy()
    dense_w, dense_b = coef.copy(order="F"), intercept.copy()
    for _ in range(2):
        lazy_engine.run_epoch(X, y, None, order, lazy_w, lazy_b, lazy_rule, penalty=penalty,
                              fit_intercept=True, offset=offset)  # fmt: skip
        epoch = engine_module._Epoch(X, y, None, order, dense_w, dense_b, dense_rule, penalty,
                                     True, None, offset, None)  # fmt: skip
        dense_engine._run_numpy_epoch(epoch)
    rtol = 1e-9 if dtype == np.float64 else 3e-4
    assert lazy_rule.n_averaged == dense_rule.n_averaged > 0
    assert_allclose(lazy_w, dense_w, rtol=rtol, atol=rtol)
    assert_allclose(lazy_b, dense_b, rtol=rtol, atol=rtol)
    for lazy_avg, dense_avg in zip(lazy_rule.averages, dense_rule.averages, strict=True):
        assert lazy_avg.dtype == dtype
        assert_allclose(lazy_avg, dense_avg, rtol=rtol, atol=rtol)
    assert not np.allclose(lazy_rule.averages[0], lazy_w)  # an average, not the iterate


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
def test_compiled_sparse_averaging_with_l1_matches_numpy(monkeypatch, dtype):
    """With an L1 part the lazy epochs apply it to each batch's features (as plain
    SGD does on CSR): the compiled sparse epoch equals the numpy lazy one."""
    results = []
    for compiled in (False, True):
        _force(monkeypatch, compiled)
        X, y = make_problem(300, 40, 3, dtype, sparse=True, seed=6)
        model = SoftmaxRegressor(penalty="elasticnet", l1_ratio=0.6, alpha=0.02, average=50,
                                 solver="sgd", max_iter=3, tol=None, random_state=0)  # fmt: skip
        results.append(model.fit(X, y))
    rtol = 1e-9 if dtype == np.float64 else 3e-4
    assert_allclose(results[1].coef_, results[0].coef_, rtol=rtol, atol=rtol)
    assert_allclose(results[1]._raw_coef, results[0]._raw_coef, rtol=rtol, atol=rtol)
    assert_allclose(results[1].intercept_, results[0].intercept_, rtol=rtol, atol=rtol)
    assert (results[0]._raw_coef == 0).any()


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize(
    "fit_intercept, centred",
    [(False, False), (True, False), (True, True)],
    ids=["no-intercept", "intercept", "centred"],
)
@pytest.mark.parametrize("eta0", [0.3, 20.0], ids=["step", "large-step-rescales"])
def test_compiled_sparse_saga_matches_the_numpy_dense_update(
    monkeypatch, eta0, fit_intercept, centred, dtype
):
    """SAGA on CSR: the compiled epoch's just-in-time (lagged) mean-gradient steps
    equal the numpy epoch's dense update of every weight at every batch, over three
    epochs sharing one memory (and a step whose L2 shrinkage forces the rescaling)."""
    X, y, order, coef, intercept = _epoch_inputs("csr", 4, dtype, seed=7)
    if not fit_intercept:
        intercept[...] = 0
    offset = np.asarray(X.mean(axis=0), dtype=dtype).ravel() if centred else None
    penalty = Penalty(0.03)
    results = []
    for compiled in (False, True):
        _force(monkeypatch, compiled)
        w, b = coef.copy(order="F"), intercept.copy()
        rule = SGDOptimizer(
            [w, b], learning_rate="constant", eta0=eta0, power_t=0.5, alpha=penalty.l2
        )
        saga = SAGAMemory(X.shape[0], X.shape[0], w, b, 32)
        engine = EpochEngine(X, 4, 32)
        assert engine.path(w, rule, saga, penalty) == (
            "compiled sparse saga" if compiled else "numpy"
        )
        for _ in range(3):
            engine.run_epoch(X, y, None, order, w, b, rule, penalty=penalty,
                             fit_intercept=fit_intercept, offset=offset, saga=saga)  # fmt: skip
        results.append((w, b, saga))
    (w0, b0, s0), (w1, b1, s1) = results
    rtol = 1e-8 if dtype == np.float64 else 2e-3
    assert np.isfinite(w0).all()
    assert_allclose(w1, w0, rtol=rtol, atol=rtol * np.abs(w0).max())
    assert_allclose(b1, b0, rtol=rtol, atol=rtol * max(1.0, np.abs(b0).max()))
    for name in ("residuals", "mean_grad_coef", "mean_grad_intercept"):
        want = getattr(s0, name)
        assert_allclose(
            getattr(s1, name), want, rtol=rtol, atol=rtol * max(1e-3, np.abs(want).max())
        )


@pytest.mark.parametrize("compiled", [False, True], ids=["numpy", "compiled"])
@pytest.mark.parametrize(
    "eta0, alpha, dtype",
    [
        (0.5, 0.1, np.float64),  # decay 0.95 over 500 batches: several rescalings
        (0.5, 0.2, np.float64),  # decay 0.90
        (0.5, 0.1, np.float32),
        (1.0, 1.0, np.float64),  # decay exactly 0: the weights' scale goes to 0
        (2.0, 0.4, np.float32),  # decay 0.2: a rescaling at every step
    ],
    ids=["decay-0.95", "decay-0.90", "decay-0.95-float32", "decay-0", "decay-0.2-float32"],
)
def test_lazy_average_survives_long_epochs_and_rescalings(
    monkeypatch, compiled, eta0, alpha, dtype
):
    """The lazy average is settled into its sums at every rescaling of the weights; kept
    as (sums + a V) / b across them it lost every digit (errors of 1e5 on averages of
    0.2 at decay 0.9, a division by zero at decay 0). The reference: the numpy epoch's
    dense update of the average at every batch."""
    _force(monkeypatch, compiled)
    X, y = make_problem(4000, 30, 4, dtype, sparse=True, seed=1)
    order = np.random.default_rng(0).permutation(4000)
    coef, intercept = np.zeros((4, 30), dtype=dtype, order="F"), np.zeros(4, dtype)
    options = dict(learning_rate="constant", eta0=eta0, power_t=0.5, alpha=alpha, average=True)
    lazy_rule = SGDOptimizer([coef, intercept], **options)
    dense_rule = copy.deepcopy(lazy_rule)
    lazy_w, lazy_b = coef.copy(order="F"), intercept.copy()
    dense_w, dense_b = coef.copy(order="F"), intercept.copy()
    EpochEngine(X, 4, 8).run_epoch(X, y, None, order, lazy_w, lazy_b, lazy_rule,
                                   penalty=Penalty(alpha), fit_intercept=True)  # fmt: skip
    epoch = engine_module._Epoch(X, y, None, order, dense_w, dense_b, dense_rule, Penalty(alpha),
                                 True, None, None, None)  # fmt: skip
    EpochEngine(X, 4, 8, sparse_kernels=False)._run_numpy_epoch(epoch)
    reference = dense_rule.averages[0]
    tolerance = (1e-10 if dtype == np.float64 else 2e-5) * np.abs(reference).max()
    assert np.abs(reference).max() > 0.05
    assert_allclose(lazy_rule.averages[0], reference, rtol=0, atol=tolerance)
    assert_allclose(lazy_rule.averages[1], dense_rule.averages[1], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("compiled", [False, True], ids=["numpy", "compiled"])
def test_lazy_average_copies_again_when_average_start_is_raised(monkeypatch, compiled):
    """set_params(average=larger) after averaging began: every engine copies the
    iterate again while t <= average, as SGDOptimizer.step does."""
    _force(monkeypatch, compiled)
    X, y, order, coef, intercept = _epoch_inputs("csr", 3, np.float64, seed=2)
    options = dict(learning_rate="constant", eta0=0.2, power_t=0.5, alpha=0.01, average=True)
    lazy_rule = SGDOptimizer([coef, intercept], **options)
    lazy_w, lazy_b = coef.copy(order="F"), intercept.copy()
    engine = EpochEngine(X, 3, 32)
    engine.run_epoch(X, y, None, order, lazy_w, lazy_b, lazy_rule, penalty=Penalty(0.01),
                     fit_intercept=True)  # fmt: skip
    assert lazy_rule.n_averaged > 1
    dense_rule = copy.deepcopy(lazy_rule)
    dense_w, dense_b = lazy_w.copy(order="F"), lazy_b.copy()
    for rule in (lazy_rule, dense_rule):
        rule.average_start = rule.t + 100  # averaging stops for the next 100 samples
    engine.run_epoch(X, y, None, order, lazy_w, lazy_b, lazy_rule, penalty=Penalty(0.01),
                     fit_intercept=True)  # fmt: skip
    epoch = engine_module._Epoch(X, y, None, order, dense_w, dense_b, dense_rule, Penalty(0.01),
                                 True, None, None, None)  # fmt: skip
    EpochEngine(X, 3, 32, sparse_kernels=False)._run_numpy_epoch(epoch)
    assert lazy_rule.n_averaged == dense_rule.n_averaged
    assert_allclose(lazy_rule.averages[0], dense_rule.averages[0], rtol=1e-9, atol=1e-12)
    assert_allclose(lazy_rule.averages[1], dense_rule.averages[1], rtol=1e-9, atol=1e-12)


class _CountingRule(SGDOptimizer):
    """A step rule of its own (here: SGDOptimizer's, counted), as a new rule would be."""

    calls = 0

    def step(self, params, grads, n_samples, l1=0.0, proximal=False):
        type(self).calls += 1
        return super().step(params, grads, n_samples, l1=l1, proximal=proximal)


@pytest.mark.parametrize("compiled", [False, True], ids=["numpy", "compiled"])
@pytest.mark.parametrize("kind", ["dense", "csr"])
@pytest.mark.parametrize("use_saga", [False, True], ids=["sgd", "saga"])
def test_a_step_rule_of_its_own_is_called_on_every_path(monkeypatch, kind, compiled, use_saga):
    """Every batch of every path goes through the step rule's own step(): the engines'
    epochs that write SGDOptimizer's rule themselves (compiled, lazy sparse) are only
    taken by SGDOptimizer itself; a subclass with its own step is trained by the numpy
    epoch, and to the same weights where its rule is the same."""
    _force(monkeypatch, compiled)
    X, y, order, coef, intercept = _epoch_inputs(kind, 3, np.float64)
    if kind == "dense":
        coef = np.ascontiguousarray(coef)
    options = dict(learning_rate="constant", eta0=0.2, power_t=0.5, alpha=0.05)
    results = []
    for rule_class in (_CountingRule, SGDOptimizer):
        _CountingRule.calls = 0
        w, b = coef.copy(order="K"), intercept.copy()
        rule = rule_class([w, b], **options)
        saga = SAGAMemory(X.shape[0], X.shape[0], w, b, 32) if use_saga else None
        engine = EpochEngine(X, 3, 32)
        engine.run_epoch(X, y, None, order, w, b, rule, penalty=Penalty(0.05, "elasticnet", 0.5),
                         fit_intercept=True, saga=saga)  # fmt: skip
        if rule_class is _CountingRule:
            assert engine.path(w, rule, saga) == "numpy"
            assert _CountingRule.calls == -(-len(order) // 32)  # once per batch
        results.append(w)
    if kind == "dense" or use_saga:  # the same rule on the same (dense-update) path
        assert_allclose(results[0], results[1], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("l1_ratio", [0.5, 1.0])
@pytest.mark.parametrize("name", ["iris", "wine", "digits"])
def test_sparse_sgd_cumulative_l1_lands_near_the_optimum(name, l1_ratio):
    """The cumulative-penalty path (plain SGD, the lazy CSR epoch) against the oracle.
    Plain SGD stops at a noise floor, so the bounds are looser than SAGA's: measured
    gaps 3e-3 to 1.5e-2 and 83-98% of the zeros shared, at alpha=1e-2."""
    X, y = _standardised(name)
    oracle_coef, oracle_value = _oracle(name, l1_ratio)
    params = dict(penalty="elasticnet", l1_ratio=l1_ratio, alpha=ALPHA, solver="sgd")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = SoftmaxRegressor(**params, random_state=0).fit(sp.csr_matrix(X), y)
    assert model._feature_offset is None  # the lazy epoch: uncentred
    value = objective(model.coef_, model.intercept_, X, y, alpha=ALPHA, l1_ratio=l1_ratio)
    assert 0 <= (value - oracle_value) / oracle_value < 3e-2
    assert np.mean((model.coef_ == 0) == (oracle_coef == 0)) > 0.8
    assert (model.coef_ == 0).sum() >= max(1, 0.3 * (oracle_coef == 0).sum())  # exact zeros
