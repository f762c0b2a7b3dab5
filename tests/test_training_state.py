"""Training state across calls, and inputs a maintainer's review found mishandled.

Each test reproduces a case that once went wrong: column-major input gathered
row by row, a second Ctrl-C swallowed, a warm start stuck at a converged adaptive
step, a validation split that moved between warm starts, zero-weight splits,
heavy rows ignored by eta0="auto", set_params ignored by partial_fit,
coef_init ignored by a warm start, a stale intercept after fit_intercept=False,
partial_fit weights rescaled by each chunk's own mean.
"""

import signal
from contextlib import nullcontext

import numpy as np
import pytest
from _data import standardised
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.datasets import make_classification
from sklearn.preprocessing import StandardScaler
from test_engine import make_problem, reference_epoch

from sksoftmax import SoftmaxRegressor
from sksoftmax._engine import EpochEngine


def _record_training_arrays(monkeypatch):
    seen = []
    original = EpochEngine.run_epoch

    def run_epoch(self, X, *args, **kwargs):
        seen.append(X)
        return original(self, X, *args, **kwargs)

    monkeypatch.setattr(EpochEngine, "run_epoch", run_epoch)
    return seen


@pytest.mark.parametrize("method", ["fit", "partial_fit"])
def test_column_major_input_is_trained_from_rows(monkeypatch, method):
    """Shuffled batches are gathered by rows: the engine must get C-ordered X
    (from Fortran order, or a DataFrame whose to_numpy() is column-major)."""
    pd = pytest.importorskip("pandas")
    X, y = standardised("iris")
    seen = _record_training_arrays(monkeypatch)
    kwargs = {"classes": np.unique(y)} if method == "partial_fit" else {}
    for data in [np.asfortranarray(X), pd.DataFrame(X, columns=list("abcd"))]:
        getattr(SoftmaxRegressor(max_iter=2, tol=None), method)(data, y, **kwargs)
    assert len(seen) >= 2
    assert all(X_seen.flags.c_contiguous for X_seen in seen)


@pytest.mark.skipif(
    signal.getsignal(signal.SIGINT) is not signal.default_int_handler,
    reason="SIGINT is handled by somebody else here",
)
def test_second_ctrl_c_interrupts_at_once(monkeypatch):
    X, y = standardised("digits")
    fitted = SoftmaxRegressor(max_iter=2, tol=None, random_state=0, warm_start=True).fit(X, y)
    coef = fitted.coef_.copy()
    original = EpochEngine.residual_
    calls = {"n": 0}

    def residual_(self, *args):
        calls["n"] += 1
        if calls["n"] == 3:  # two presses before the batch ends
            signal.raise_signal(signal.SIGINT)
            signal.raise_signal(signal.SIGINT)
        return original(self, *args)

    monkeypatch.setattr(EpochEngine, "residual_", residual_)
    with pytest.raises(KeyboardInterrupt):
        fitted.fit(X, y)
    assert_array_equal(fitted.coef_, coef)  # the hard stop changed nothing
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_warm_start_restarts_a_converged_adaptive_step():
    """SGDClassifier restarts the adaptive step at eta0 on each fit; t_ goes on."""
    X, y = standardised("digits")
    # A fixed eta0: with "auto", a new estimate on new data would hide the bug.
    # Plain SGD: SAGA stops at its plateau, the optimum, without cutting the step.
    clf = SoftmaxRegressor(
        eta0=0.05, warm_start=True, random_state=0, solver="sgd", alpha=0.01, tol=1e-3
    )
    clf.fit(X, y)
    assert clf._optimizer.eta < 1e-5  # converged: the step was cut to nothing
    t_before, coef_before = clf.t_, clf.coef_.copy()
    clf.set_params(max_iter=1, tol=None).fit(X[::-1], y[::-1])
    assert clf.t_ == t_before + len(y)
    assert clf._optimizer.eta == 0.05
    # At the optimum, one epoch of noise at eta0 moves the weights ~1e-4; at the
    # cut step it would move them ~1e-9.
    assert np.abs(clf.coef_ - coef_before).max() > 1e-5


def test_early_stopping_holds_out_the_same_rows_on_every_warm_start(monkeypatch):
    X, y = standardised("digits")
    splits = []
    original = SoftmaxRegressor._validation_split

    def _validation_split(self, y_idx, rng):
        split = original(self, y_idx, rng)
        splits.append(split[1])
        return split

    monkeypatch.setattr(SoftmaxRegressor, "_validation_split", _validation_split)
    clf = SoftmaxRegressor(early_stopping=True, warm_start=True, random_state=3, max_iter=3)
    with pytest.warns(Warning):
        clf.fit(X, y)
        clf.fit(X, y)
    assert len(splits) == 2
    assert_array_equal(splits[0], splits[1])


@pytest.mark.parametrize("part", ["validation", "training"])
def test_early_stopping_with_an_all_zero_weight_split_raises(part):
    X, y = standardised("iris")
    clf = SoftmaxRegressor(early_stopping=True, validation_fraction=0.5, random_state=0)
    # Find the split fit will draw, then zero the weights of one side of it.
    y_idx = np.searchsorted(np.unique(y), y)
    train, validation = clf._validation_split(y_idx, np.ones(len(y)))
    sample_weight = np.ones(len(y))
    sample_weight[validation if part == "validation" else train] = 0.0
    with pytest.raises(ValueError, match=f"{part} set whose sample weights are all zero"):
        clf.fit(X, y, sample_weight=sample_weight)


def test_auto_step_accounts_for_heavy_rows():
    """With class_weight='balanced' on a 1:500 problem, a rare row weighs ~250x the
    mean in its batch; an auto step blind to that made the first epochs' loss
    10-100x the starting log(2)."""
    X, y = make_classification(
        20_000, 50, n_informative=10, weights=[0.998, 0.002], flip_y=0, random_state=0
    )
    X = StandardScaler().fit_transform(X)
    clf = SoftmaxRegressor(class_weight="balanced", max_iter=3, tol=None, random_state=0)
    clf.fit(X, y)
    assert max(clf.loss_curve_) < 1.0


def test_partial_fit_auto_step_follows_set_params():
    X, y = standardised("digits")
    clf = SoftmaxRegressor(random_state=0).partial_fit(X, y, classes=np.unique(y))
    plain_eta0 = clf._optimizer.eta0
    clf.set_params(momentum=0.9).partial_fit(X, y)
    assert clf._optimizer.eta0 == pytest.approx(0.1 * plain_eta0)
    fresh = SoftmaxRegressor(momentum=0.9, random_state=0).partial_fit(X, y, np.unique(y))
    assert clf._optimizer.eta0 == pytest.approx(fresh._optimizer.eta0)
    clf.set_params(momentum=0.0, batch_size=1).partial_fit(X[:50], y[:50])
    assert clf._optimizer.eta0 < 0.5 * plain_eta0  # a single row is a noisier batch


def test_warm_start_inits_replace_only_the_part_given():
    """As in SGDClassifier: coef_init or intercept_init replaces that part of the
    warm-started weights; the other part and the optimiser state carry on."""
    X, y = standardised("iris")
    clf = SoftmaxRegressor(
        warm_start=True, max_iter=3, tol=None, random_state=0, learning_rate="constant"
    ).fit(X, y)
    learned_intercept, t = clf.intercept_.copy(), clf.t_
    assert np.abs(learned_intercept).max() > 1e-3
    clf.set_params(eta0=1e-9, max_iter=1)  # a step too small to move the weights
    clf.fit(X, y, coef_init=np.full((3, 4), 5.0))
    assert_allclose(clf.coef_, 5.0, atol=1e-6)
    assert_allclose(clf.intercept_, learned_intercept, atol=1e-6)
    assert clf.t_ == t + len(y)
    clf.fit(X, y, intercept_init=np.ones(3))
    assert_allclose(clf.intercept_, 1.0, atol=1e-6)
    assert_allclose(clf.coef_, 5.0, atol=1e-6)


def test_binary_coef_init_accepts_a_vector():
    X, y = standardised("iris")
    X, y = X[y < 2], y[y < 2]
    a = SoftmaxRegressor(max_iter=1, tol=None, random_state=0)
    b = SoftmaxRegressor(max_iter=1, tol=None, random_state=0)
    a.fit(X, y, coef_init=np.arange(4.0))
    b.fit(X, y, coef_init=np.arange(4.0)[None, :])
    assert_array_equal(a.coef_, b.coef_)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_coef_init_is_rejected(bad):
    X, y = standardised("iris")
    coef_init = np.zeros((3, 4))
    coef_init[1, 2] = bad
    with pytest.raises(ValueError, match="coef_init contains NaN or infinity"):
        SoftmaxRegressor().fit(X, y, coef_init=coef_init)


@pytest.mark.parametrize("method", ["fit", "partial_fit"])
def test_switching_fit_intercept_off_zeroes_the_intercept(method):
    X, y = standardised("iris")
    clf = SoftmaxRegressor(momentum=0.5, average=True, warm_start=True, max_iter=3, tol=None)
    clf.fit(X + 2.0, y)
    assert np.abs(clf.intercept_).max() > 1e-3
    clf.set_params(fit_intercept=False)
    getattr(clf, method)(X, y)
    assert_array_equal(clf.intercept_, 0.0)
    assert_array_equal(clf._raw_intercept, 0.0)


def test_auto_step_with_mostly_zero_weights_stays_stable():
    """Batches are drawn from all rows, zero weights included: with 120 weighted rows
    among 20000, each batch holds ~1 row of weight ~170x the mean, which the step
    must allow for (counting only the weighted rows made the first epochs' loss
    3x the starting log(2))."""
    X, y = make_classification(2_000, 20, random_state=0)
    X = StandardScaler().fit_transform(X)
    sample_weight = np.zeros(len(y))
    sample_weight[np.random.default_rng(0).choice(len(y), 12, replace=False)] = 1.0
    clf = SoftmaxRegressor(alpha=1e-2, max_iter=5, tol=None, random_state=0)
    clf.fit(X, y, sample_weight=sample_weight)
    assert max(clf.loss_curve_) < 1.0


def test_early_stopping_batches_are_capped_at_the_training_rows(monkeypatch):
    """With fewer training rows than batch_size the epoch is one full step, not a
    step shrunk by n_train / batch_size."""
    X, y = standardised("iris")
    sizes = []
    original = EpochEngine.__init__

    def __init__(self, X, n_params, batch_size, **kwargs):
        sizes.append(batch_size)
        original(self, X, n_params, batch_size, **kwargs)

    monkeypatch.setattr(EpochEngine, "__init__", __init__)
    SoftmaxRegressor(early_stopping=True, validation_fraction=0.2, batch_size=150).fit(X, y)
    assert sizes == [120]


def test_huge_float32_sample_weights_do_not_overflow():
    X, y = standardised("iris")
    X = X.astype(np.float32)
    clf = SoftmaxRegressor(max_iter=3, tol=None, random_state=0)
    clf.fit(X, y, sample_weight=np.full(len(y), 1e36, dtype=np.float32))
    reference = SoftmaxRegressor(max_iter=3, tol=None, random_state=0).fit(X, y)
    assert np.abs(clf.coef_).max() > 0.1
    assert_allclose(clf.coef_, reference.coef_, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("started_by", ["partial_fit", "fit"])
@pytest.mark.parametrize("weighting", ["sample_weight", "class_weight"])
def test_partial_fit_weights_keep_their_size_from_call_to_call(started_by, weighting):
    """Every call divides its weights by the mean weight of the call that started
    the model, so a later chunk of small weights moves the model little, and a
    chunk of one class feels its class weight. Oracle: plain minibatch SGD."""
    X, y = make_problem(203, 7, 3, np.float64, sparse=False)
    first, second = np.arange(120), np.arange(120, 203)
    second = second[y[second] == 0] if weighting == "class_weight" else second
    rng = np.random.default_rng(3)
    if weighting == "sample_weight":
        class_weight = None
        w_first = rng.uniform(0.5, 2.0, len(first))
        w_second = 0.1 * rng.uniform(0.0, 3.0, len(second))
    else:
        class_weight = {0: 4.0, 1: 1.0, 2: 0.5}
        w_first = np.array([class_weight[label] for label in y[first]])
        w_second = np.full(len(second), class_weight[0])
    eta, alpha, batch_size = 0.3, 0.01, 32
    model = SoftmaxRegressor(
        learning_rate="constant",
        eta0=eta,
        alpha=alpha,
        batch_size=batch_size,
        shuffle=False,
        class_weight=class_weight,
        max_iter=1,
        tol=None,
    )
    given = (lambda w: w) if weighting == "sample_weight" else (lambda w: None)
    if started_by == "fit":
        model.fit(X[first], y[first], sample_weight=given(w_first))
    else:
        model.partial_fit(X[first], y[first], classes=[0, 1, 2], sample_weight=given(w_first))
    coef, intercept = model.coef_.copy(), model.intercept_.copy()
    model.partial_fit(X[second], y[second], sample_weight=given(w_second))
    # Training centres the rows on the first call's weighted mean, implicitly: the
    # reference steps on X - mu with the intercept b + W mu.
    mu = np.average(X[first], axis=0, weights=w_first)
    expected_coef, expected_intercept = reference_epoch(
        X[second] - mu,
        y[second],
        w_second / w_first.mean(),
        np.arange(len(second)),
        coef,
        intercept + coef @ mu,
        eta=eta,
        alpha=alpha,
        # A chunk smaller than batch_size steps in proportion to its size.
        batch_size=batch_size,
    )
    assert_allclose(model.coef_, expected_coef, rtol=1e-10, atol=1e-12)
    assert_allclose(
        model.intercept_, expected_intercept - expected_coef @ mu, rtol=1e-10, atol=1e-12
    )


def test_only_the_main_thread_limits_the_blas_threads(monkeypatch):
    """The BLAS limit is process-wide: fits running at once in worker threads
    set and restored each other's limits (and OpenBLAS ignored restores from
    busy worker threads), leaving the process at one BLAS thread for good. A
    fit in a worker thread now leaves BLAS alone; one in the main thread limits
    it and restores it. The controller is a stand-in that records the calls."""
    import threading

    import sksoftmax._softmax_regressor as module

    class Controller:
        threads = 2
        calls = []

        def limit(self, limits, user_api):
            found, controller = self.threads, self
            self.threads = limits
            self.calls.append((threading.current_thread().name, limits))

            class Limiter(nullcontext):
                def __exit__(self, *exc_info):
                    controller.threads = found

            return Limiter()

    controller = Controller()
    monkeypatch.setattr(module, "_blas_controller", controller)
    X, y = standardised("iris")
    fitted_in_worker = []
    worker = threading.Thread(
        target=lambda: fitted_in_worker.append(SoftmaxRegressor(max_iter=3, tol=None).fit(X, y)),
        name="worker",
    )
    worker.start()
    worker.join()
    assert len(fitted_in_worker) == 1, "the fit in the worker thread failed"
    assert controller.calls == []
    seen = []
    original = EpochEngine.run_epoch

    def run_epoch(self, *args, **kwargs):
        seen.append(controller.threads)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(EpochEngine, "run_epoch", run_epoch)
    SoftmaxRegressor(max_iter=3, tol=None).fit(X, y)
    assert controller.calls == [(threading.main_thread().name, 1)]
    assert seen == [1, 1, 1]  # every epoch under the limit
    assert controller.threads == 2  # and restored


@pytest.mark.parametrize(
    "dtype, scale",
    # 1.3e19: ||w|| past float32's range while w's entries are not (v came out all 0).
    [(np.float32, 1e15), (np.float32, 1e18), (np.float32, 1.3e19), (np.float64, 1e100)],
)
@pytest.mark.parametrize("sparse", [False, True])
def test_auto_step_scales_with_the_features_however_large(dtype, scale, sparse):
    """Scaling X by c scales the curvature by c**2, so eta0="auto" by 1 / c**2, and
    (with alpha=0, no intercept) the model by 1 / c: the same predictions. The estimate once
    overflowed float32 at c = 1e15 and made the step 0 (or NaN, then 1): a model
    that never moved but "converged"."""
    import scipy.sparse as sp

    X, y = standardised("iris")
    X = X.astype(dtype)
    big = (X * dtype(scale)).astype(dtype)
    as_input = sp.csr_matrix if sparse else np.asarray
    # No intercept: its constant feature 1 does not scale with X.
    params = dict(alpha=0.0, fit_intercept=False, max_iter=5, tol=None, random_state=0)
    small_model = SoftmaxRegressor(**params).fit(as_input(X), y)
    big_model = SoftmaxRegressor(**params).fit(as_input(big), y)
    assert_allclose(
        big_model._optimizer.eta0 * scale**2, small_model._optimizer.eta0, rtol=1e-5
    )
    assert_allclose(
        big_model.decision_function(as_input(big)),
        small_model.decision_function(as_input(X)),
        rtol=1e-3 if dtype == np.float32 else 1e-9,
        atol=1e-3 if dtype == np.float32 else 1e-9,
    )


@pytest.mark.parametrize("sparse", [False, True])
def test_auto_step_on_features_too_large_to_square_is_a_clear_error(sparse):
    import scipy.sparse as sp

    X, y = standardised("iris")
    big = X * 1e160  # squares overflow float64
    model = SoftmaxRegressor()
    with pytest.raises(ValueError, match="eta0='auto' cannot size the step.*StandardScaler"):
        model.fit(sp.csr_matrix(big) if sparse else big, y)
    assert not hasattr(model, "coef_")


@pytest.mark.parametrize("chunk_nnz", [1, 5, 2**20])
def test_float64_row_norms_of_overflowing_float32_csr(monkeypatch, chunk_nnz):
    """The float64 fallback sums each row of a CSR matrix, by chunks of non-zeros,
    with empty rows first, last and in between. Oracle: dense float64 squares."""
    import scipy.sparse as sp

    import sksoftmax._optim as optim

    monkeypatch.setattr(optim, "_NORM_CHUNK_NNZ", chunk_nnz)
    rng = np.random.default_rng(0)
    dense = rng.standard_normal((40, 9)) * 1e20  # every square overflows float32
    dense[rng.random(dense.shape) < 0.6] = 0.0
    dense[[0, 5, 6, 39]] = 0.0
    X = sp.csr_matrix(dense.astype(np.float32))
    expected = (X.toarray().astype(np.float64) ** 2).sum(axis=1)
    assert_allclose(optim._squared_row_norms(X), expected, rtol=1e-12)


@pytest.mark.parametrize("chunk", ["weighted 0.01", "one class, class_weight 4"])
def test_partial_fit_loss_is_the_weighted_mean_whatever_the_weight_scale(chunk):
    """The loss a call reports is the weighted mean cross-entropy of its chunk
    (one batch here, so taken at the weights before the call) plus the penalty,
    however the chunk's weights compare with those of the first call.
    Oracle: sklearn's log_loss."""
    from sklearn.metrics import log_loss

    X, y = standardised("iris")
    class_weight = {0: 4.0, 1: 1.0, 2: 1.0} if "class" in chunk else None
    model = SoftmaxRegressor(batch_size=len(y), class_weight=class_weight, random_state=0)
    for _ in range(20):
        model.partial_fit(X, y, classes=[0, 1, 2])
    rows = np.flatnonzero(y == 0) if "class" in chunk else np.arange(len(y))
    weights = None if "class" in chunk else np.full(len(rows), 0.01)
    proba_before = model.predict_proba(X[rows])
    model.partial_fit(X[rows], y[rows], sample_weight=weights)
    expected = log_loss(y[rows], proba_before, sample_weight=weights, labels=[0, 1, 2])
    expected += 0.5 * model.alpha * float(np.sum(model.coef_**2))
    assert_allclose(model.loss_curve_[-1], expected, rtol=1e-10)


def test_partial_fit_on_a_model_pickled_before_the_weight_scale_was_kept():
    X, y = standardised("iris")
    model = SoftmaxRegressor(random_state=0).partial_fit(X, y, classes=[0, 1, 2])
    del model._weight_scale  # what an older sksoftmax pickled
    model.partial_fit(X, y, sample_weight=np.full(len(y), 3.0))
    assert model._weight_scale == 3.0  # then each call's own mean, as it was
