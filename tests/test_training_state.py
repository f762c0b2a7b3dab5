"""Training state across calls, and inputs a maintainer's review found mishandled.

Each test reproduces a case that once went wrong: column-major input gathered
row by row, a second Ctrl-C swallowed, a warm start stuck at a converged adaptive
step, a validation split that moved between warm starts, zero-weight splits,
heavy rows ignored by eta0="auto", set_params ignored by partial_fit,
coef_init ignored by a warm start, a stale intercept after fit_intercept=False.
"""

import signal
from functools import cache

import numpy as np
import pytest
from numpy.testing import assert_array_equal
from sklearn.datasets import load_digits, load_iris, make_classification
from sklearn.preprocessing import StandardScaler

from sksoftmax import SoftmaxRegressor
from sksoftmax._engine import EpochEngine


@cache
def _standardised(name):
    loader = {"iris": load_iris, "digits": load_digits}[name]
    X, y = loader(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    X.setflags(write=False)
    return X, y


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
    X, y = _standardised("iris")
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
    X, y = _standardised("digits")
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
    X, y = _standardised("digits")
    # A fixed eta0: with "auto", a new estimate on new data would hide the bug.
    clf = SoftmaxRegressor(eta0=0.05, warm_start=True, random_state=0)
    clf.fit(X, y)
    assert clf._optimizer.eta < 1e-5  # converged: the step was cut to nothing
    t_before, coef_before = clf.t_, clf.coef_.copy()
    clf.set_params(max_iter=1, tol=None).fit(X[::-1], y[::-1])
    assert clf.t_ == t_before + len(y)
    assert np.abs(clf.coef_ - coef_before).max() > 1e-3


def test_early_stopping_holds_out_the_same_rows_on_every_warm_start(monkeypatch):
    X, y = _standardised("digits")
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
    X, y = _standardised("iris")
    clf = SoftmaxRegressor(early_stopping=True, validation_fraction=0.5, random_state=0)
    # Find the split fit will draw, then zero the weights of one side of it.
    y_idx = np.searchsorted(np.unique(y), y)
    train, validation = clf._validation_split(y_idx, np.random.RandomState(0))
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
    X, y = _standardised("digits")
    clf = SoftmaxRegressor(random_state=0).partial_fit(X, y, classes=np.unique(y))
    plain_eta0 = clf._optimizer.eta0
    clf.set_params(momentum=0.9).partial_fit(X, y)
    assert clf._optimizer.eta0 == pytest.approx(0.1 * plain_eta0)
    fresh = SoftmaxRegressor(momentum=0.9, random_state=0).partial_fit(X, y, np.unique(y))
    assert clf._optimizer.eta0 == pytest.approx(fresh._optimizer.eta0)
    clf.set_params(momentum=0.0, batch_size=1).partial_fit(X[:50], y[:50])
    assert clf._optimizer.eta0 < 0.5 * plain_eta0  # a single row is a noisier batch


def test_coef_init_takes_precedence_over_warm_start():
    X, y = _standardised("iris")
    clf = SoftmaxRegressor(warm_start=True, max_iter=1, tol=None, random_state=0).fit(X, y)
    coef_init = np.full((3, 4), 5.0)
    clf.fit(X, y, coef_init=coef_init)
    fresh = SoftmaxRegressor(max_iter=1, tol=None, random_state=0)
    fresh.fit(X, y, coef_init=coef_init)
    assert_array_equal(clf.coef_, fresh.coef_)


def test_binary_coef_init_accepts_a_vector():
    X, y = _standardised("iris")
    X, y = X[y < 2], y[y < 2]
    a = SoftmaxRegressor(max_iter=1, tol=None, random_state=0)
    b = SoftmaxRegressor(max_iter=1, tol=None, random_state=0)
    a.fit(X, y, coef_init=np.arange(4.0))
    b.fit(X, y, coef_init=np.arange(4.0)[None, :])
    assert_array_equal(a.coef_, b.coef_)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_coef_init_is_rejected(bad):
    X, y = _standardised("iris")
    coef_init = np.zeros((3, 4))
    coef_init[1, 2] = bad
    with pytest.raises(ValueError, match="coef_init contains NaN or infinity"):
        SoftmaxRegressor().fit(X, y, coef_init=coef_init)


@pytest.mark.parametrize("method", ["fit", "partial_fit"])
def test_switching_fit_intercept_off_zeroes_the_intercept(method):
    X, y = _standardised("iris")
    clf = SoftmaxRegressor(momentum=0.5, average=True, warm_start=True, max_iter=3, tol=None)
    clf.fit(X + 2.0, y)
    assert np.abs(clf.intercept_).max() > 1e-3
    clf.set_params(fit_intercept=False)
    getattr(clf, method)(X, y)
    assert_array_equal(clf.intercept_, 0.0)
    assert_array_equal(clf._raw_intercept, 0.0)
