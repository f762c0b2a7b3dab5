"""The fast epoch engine computes what the reference kernels define.

Each test runs one epoch of the engine and the same epoch written plainly with
``sksoftmax._loss.gradient`` (same rows, same batches, same steps) and compares
the weights to rounding. Plus: fit on C-contiguous data copies no X.
"""

import tracemalloc

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose

from sksoftmax import SoftmaxRegressor
from sksoftmax._engine import EpochEngine
from sksoftmax._loss import gradient
from sksoftmax._optim import SGDOptimizer
from sksoftmax._penalty import Penalty


def make_problem(n_samples, n_features, n_classes, dtype, sparse, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_samples, n_features))
    if sparse:
        X[rng.random(X.shape) < 0.7] = 0.0
    teacher = rng.standard_normal((n_features, n_classes))
    y = np.argmax(X @ teacher + rng.gumbel(size=(n_samples, n_classes)), axis=1)
    X = X.astype(dtype)
    return (sp.csr_matrix(X) if sparse else X), y


def reference_epoch(X, y, weights, order, coef, intercept, *, eta, alpha, batch_size):
    """Plain minibatch SGD with the reference gradient, matching the engine's scaling.

    The engine's batch gradient is ``sum_b w_b (p_b - y_b) x_b / m`` with ``w`` the
    sample weights over their mean; ``gradient`` normalises by the batch's weight
    sum instead, so the data term is rescaled by ``sum_b w_b / m``. A ragged last
    batch of m < batch_size rows takes the step ``eta * m / batch_size``.
    """
    coef, intercept = coef.astype(np.float64), intercept.astype(np.float64)
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        batch_w = None if weights is None else weights[rows]
        g_coef, g_intercept = gradient(coef, intercept, X[rows], y[rows], batch_w, 0.0)
        scale = 1.0 if batch_w is None else batch_w.sum() / len(rows)
        step = eta * len(rows) / batch_size
        coef -= step * (scale * g_coef + alpha * coef)
        intercept -= step * scale * g_intercept
    return coef, intercept


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-10), (np.float32, 2e-4)])
@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("n_classes", [2, 4])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("shuffled", [False, True])
def test_engine_epoch_matches_reference(dtype, rtol, sparse, n_classes, weighted, shuffled):
    X, y = make_problem(203, 7, n_classes, dtype, sparse)  # 203: a ragged last batch
    rng = np.random.default_rng(1)
    weights = rng.uniform(0.0, 3.0, size=len(y)).astype(dtype) if weighted else None
    order = rng.permutation(len(y)) if shuffled else None
    n_params = 1 if n_classes == 2 else n_classes
    coef0 = (0.1 * rng.standard_normal((n_params, X.shape[1]))).astype(dtype)
    intercept0 = (0.1 * rng.standard_normal(n_params)).astype(dtype)
    eta, alpha, batch_size = 0.3, 0.01, 32

    coef, intercept = coef0.copy(), intercept0.copy()
    optimizer = SGDOptimizer(
        [coef, intercept], learning_rate="constant", eta0=eta, power_t=0.5, alpha=alpha
    )
    engine = EpochEngine(X, n_params, batch_size)
    loss_sum, n_seen = engine.run_epoch(
        X, y, weights, order, coef, intercept, optimizer, alpha=alpha, fit_intercept=True
    )

    rows = np.arange(len(y)) if order is None else order
    expected_coef, expected_intercept = reference_epoch(
        X, y, weights, rows, coef0, intercept0, eta=eta, alpha=alpha, batch_size=batch_size
    )
    assert n_seen == len(y) and optimizer.t == len(y)
    assert coef.dtype == dtype and intercept.dtype == dtype
    assert np.isfinite(loss_sum)
    assert_allclose(coef, expected_coef, rtol=rtol, atol=rtol)
    assert_allclose(intercept, expected_intercept, rtol=rtol, atol=rtol)


def test_engine_loss_is_mean_cross_entropy_before_each_update():
    """With eta=0 the weights never move, so the epoch loss is the plain objective."""
    from sksoftmax._loss import objective

    X, y = make_problem(150, 5, 3, np.float64, sparse=False)
    coef = np.random.default_rng(2).standard_normal((3, 5))
    intercept = np.array([0.5, -0.2, 0.1])
    optimizer = SGDOptimizer(
        [coef, intercept], learning_rate="constant", eta0=1e-300, power_t=0.5, alpha=0.0
    )
    loss_sum, n_seen = EpochEngine(X, 3, 16).run_epoch(
        X, y, None, None, coef, intercept, optimizer, alpha=0.0, fit_intercept=True
    )
    assert_allclose(loss_sum / n_seen, objective(coef, intercept, X, y), rtol=1e-12)


def test_fit_on_c_contiguous_float32_adds_little_memory(monkeypatch):
    """No copy of X: peak memory added by fit stays under 5% of X.nbytes.

    The numpy engine; tests/test_compiled.py checks the compiled one.
    """
    monkeypatch.setenv("SKSOFTMAX_NUMBA", "0")
    X, y = memory_problem()
    for solver in ["sgd", "saga"]:
        model = SoftmaxRegressor(max_iter=2, tol=None, random_state=0, solver=solver)
        added = fit_peak_memory(model, X, y)
        assert model.coef_.dtype == np.float32
        assert added < 0.05 * X.nbytes + saga_table_nbytes(solver, X, y), (
            f"{solver}: fit added {added / X.nbytes:.1%} of X.nbytes"
        )


def saga_table_nbytes(solver, X, y):
    """SAGA's memory of one residual per row and class: its one allowance beyond 5%."""
    return X.shape[0] * len(np.unique(y)) * X.itemsize if solver == "saga" else 0


def memory_problem():
    """C-contiguous float32 X of 40 MB, 10 classes."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40_000, 256), dtype=np.float32)
    return X, rng.integers(0, 10, size=len(X))


def fit_peak_memory(model, X, y):
    """Bytes that ``model.fit(X, y)`` adds to the traced peak memory."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        model.fit(X, y)
        return tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()


def test_blas_threads_limited_for_batch_sized_products():
    X = np.zeros((1000, 784), dtype=np.float32)
    assert EpochEngine(X, 10, 128).blas_threads() == 1
    big = EpochEngine(np.zeros((20_000, 784), dtype=np.float32), 100, 20_000)
    assert big.blas_threads() is None


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"momentum": 0.9},
        {"average": True},
        # eta * alpha = 0.45 per step over 38 batches: the scalar shrinkage falls
        # past 1e-6 within an epoch and is folded back into the weights.
        {"alpha": 0.5, "eta0": 0.9, "learning_rate": "constant", "batch_size": 8},
        # eta * alpha = 0.6: too large a shrinkage for the scalar, applied directly.
        {"alpha": 1.0, "eta0": 0.6, "learning_rate": "constant"},
    ],
)
def test_sparse_and_dense_fits_agree(options):
    """The sparse engine (lazy shrinkage, or the dense update under momentum and
    averaging) trains the same model as the dense one."""
    X, y = make_problem(300, 40, 3, np.float64, sparse=True)
    # solver="sgd": "auto" trains dense X by SAGA, sparse X by SGD.
    params = dict(alpha=0.01, max_iter=5, tol=None, random_state=0, batch_size=16, solver="sgd")
    params.update(options)
    dense = SoftmaxRegressor(**params).fit(X.toarray(), y)
    sparse = SoftmaxRegressor(**params).fit(X, y)
    assert_allclose(sparse.coef_, dense.coef_, rtol=1e-10, atol=1e-12)
    assert_allclose(sparse.intercept_, dense.intercept_, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("options", [{}, {"momentum": 0.9, "average": True}])
def test_switching_between_sparse_and_dense_input_keeps_training_the_same_model(options):
    """Sparse training keeps coef Fortran-ordered (its engine works on coef.T in
    place), dense training C-ordered; partial_fit switching between the two,
    with momentum and averaging buffers, trains what dense input alone trains."""
    X, y = make_problem(300, 40, 3, np.float64, sparse=True)
    params = dict(
        alpha=0.01, max_iter=3, tol=None, random_state=0, batch_size=16, solver="sgd", **options
    )

    def layouts(model):
        optimizer = model._optimizer
        buffers = [model._raw_coef, model.coef_]
        buffers += [b[0] for b in (optimizer.velocities, optimizer.averages) if b is not None]
        return {("F" if b.flags.f_contiguous else "C") for b in buffers}

    switching = SoftmaxRegressor(**params).fit(X, y)
    assert layouts(switching) == {"F"}
    switching.partial_fit(X.toarray(), y)
    assert layouts(switching) == {"C"}
    switching.partial_fit(X, y)
    assert layouts(switching) == {"F"}

    dense = SoftmaxRegressor(**params).fit(X.toarray(), y)
    for _ in range(2):
        dense.partial_fit(X.toarray(), y)
    assert_allclose(switching.coef_, dense.coef_, rtol=1e-10, atol=1e-12)
    assert_allclose(switching.intercept_, dense.intercept_, rtol=1e-10, atol=1e-12)
    assert switching.t_ == dense.t_


def test_warm_start_on_float32_after_float64_trains_in_float32():
    X, y = make_problem(300, 20, 3, np.float64, sparse=False)
    model = SoftmaxRegressor(max_iter=3, tol=None, random_state=0, warm_start=True)
    model.fit(X, y)
    model.fit(X.astype(np.float32), y)
    assert model.coef_.dtype == model.intercept_.dtype == np.float32
    assert model._optimizer.averages is None or model._optimizer.averages[0].dtype == np.float32


@pytest.mark.parametrize("n_params", [1, 4])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("subset", [False, True])
def test_objective_at_zero_weights_skips_the_pass_over_csr(monkeypatch, n_params, weighted, subset):
    """A fit's first objective (every weight 0) on CSR is computed from the intercept
    alone; the same value and largest logit as the pass over the same rows, dense.
    A NaN in X still gives NaN (through the pass, which then runs)."""
    from sksoftmax import _loss

    rng = np.random.default_rng(3)
    X, y = make_problem(300, 50, max(2, n_params), np.float64, sparse=True, seed=3)
    coef, intercept = np.zeros((n_params, 50)), rng.standard_normal(n_params)
    weights = rng.uniform(0.0, 2.0, 300) if weighted else None
    rows = rng.permutation(300)[:200] if subset else None
    penalty = Penalty(0.1, "elasticnet", 0.5)
    dense = X.toarray()
    expected = _loss.objective_in_chunks(dense, y, weights, coef, intercept, penalty, rows=rows)
    passes = []

    def counted(X, part, coef, intercept):
        passes.append(1)
        return X[part] @ coef.T + intercept

    monkeypatch.setattr(_loss, "_chunk_logits", counted)
    actual = _loss.objective_in_chunks(X, y, weights, coef, intercept, penalty, rows=rows)
    assert_allclose(actual, expected, rtol=1e-14)
    assert not passes
    X.data[7] = np.nan
    assert np.isnan(_loss.objective_in_chunks(X, y, weights, coef, intercept, penalty)[0])
    assert passes
