"""The optimiser issue: schedules, momentum, averaging, early stopping, continuity,
divergence, interruption and verbose output of ``SoftmaxRegressor``.

Each test is built so that it fails if the option it covers were ignored.
"""

import math
import pickle
import signal

import numpy as np
import pytest
from _data import standardised
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.linear_model import LogisticRegression, SGDClassifier

from sksoftmax import SoftmaxRegressor
from sksoftmax._engine import EpochEngine
from sksoftmax._loss import objective
from sksoftmax._optim import ADAPTIVE_MIN_ETA, SGDOptimizer, optimal_offset


def _epochs_to_reach(loss_curve, target):
    below = np.flatnonzero(np.asarray(loss_curve) <= target)
    return int(below[0]) + 1 if len(below) else math.inf


# ---------------------------------------------------------------- schedules


@pytest.mark.parametrize("alpha", [1e-4, 1e-2, 1.0])
def test_optimal_schedule_is_sklearns_formula(alpha):
    """eta = 1 / (alpha * (t0 + t - 1)), t from 1, t0 making eta(1) = alpha ** -0.25."""
    opt = SGDOptimizer([np.zeros(2)], learning_rate="optimal", eta0=1.0, power_t=0.5, alpha=alpha)
    typical_weight = math.sqrt(1.0 / math.sqrt(alpha))
    t0 = 1.0 / (typical_weight * alpha)
    assert opt.t0 == pytest.approx(t0)
    for seen in [0, 1, 37, 12_345]:
        opt.t = seen
        assert opt.current_eta() == pytest.approx(1.0 / (alpha * (t0 + seen)), rel=1e-12)
    assert optimal_offset(alpha) == pytest.approx(t0)


@pytest.mark.parametrize("alpha", [1e-4, 1e-2, 1.0])
def test_optimal_first_step_matches_sgdclassifier(alpha):
    """Oracle: sklearn's first "optimal" step on one sample from w = 0 (binary log loss).

    From w = 0 the log-loss derivative is -1/2 for y = 1, so w = eta / 2 * x.
    """
    X, y = np.array([[1.0]]), np.array([1])
    sgd = SGDClassifier(
        loss="log_loss", learning_rate="optimal", alpha=alpha, fit_intercept=False
    ).partial_fit(X, y, classes=[0, 1])
    opt = SGDOptimizer([np.zeros(1)], learning_rate="optimal", eta0=1.0, power_t=0.5, alpha=alpha)
    assert opt.current_eta() == pytest.approx(2.0 * sgd.coef_[0, 0], rel=1e-9)


@pytest.mark.parametrize("power_t", [0.25, 0.5, 1.0])
def test_invscaling_schedule_is_sklearns_formula(power_t):
    """eta = eta0 / t ** power_t with t = samples seen + 1."""
    opt = SGDOptimizer(
        [np.zeros(2)], learning_rate="invscaling", eta0=0.7, power_t=power_t, alpha=0.0
    )
    for seen in [0, 1, 99, 10_000]:
        opt.t = seen
        assert opt.current_eta() == pytest.approx(0.7 / (seen + 1) ** power_t, rel=1e-12)


def test_schedule_t_counts_samples():
    """t_ counts samples, and a step uses eta(t) with t the samples seen before it."""
    X, y = standardised("iris")
    clf = SoftmaxRegressor(
        learning_rate="invscaling", eta0=0.5, batch_size=32, max_iter=3, tol=None
    )
    clf.fit(X, y)
    assert clf.t_ == len(y) * 3
    clf.partial_fit(X[:50], y[:50])
    assert clf.t_ == len(y) * 3 + 50

    # One hand-made SGD step per batch with eta0 / (seen + 1) ** power_t.
    params = [np.zeros((2, 3)), np.zeros(2)]
    opt = SGDOptimizer(params, learning_rate="invscaling", eta0=0.5, power_t=0.5, alpha=0.0)
    grads_seen = []
    for m in [10, 10, 5]:
        grads = [np.ones((2, 3)), np.ones(2)]
        grads_seen.append(0.5 / (opt.t + 1) ** 0.5)
        opt.step(params, grads, m)
    assert opt.t == 25
    assert_allclose(params[0], -sum(grads_seen) * np.ones((2, 3)))


def test_adaptive_divides_by_exactly_five():
    opt = SGDOptimizer([np.zeros(2)], learning_rate="adaptive", eta0=0.3, power_t=0.5, alpha=0.0)
    etas = [opt.current_eta()]
    while opt.stalled():
        etas.append(opt.current_eta())
    assert_allclose(np.array(etas[1:]) / np.array(etas[:-1]), 0.2, rtol=1e-15)
    assert etas[-2] > ADAPTIVE_MIN_ETA >= etas[-1]
    for schedule in ["constant", "invscaling", "optimal"]:
        other = SGDOptimizer([np.zeros(2)], learning_rate=schedule, eta0=0.3, power_t=0.5, alpha=1)
        assert not other.stalled()  # the other schedules stop instead


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_adaptive_step_shrinks_when_training_loss_stalls():
    """tol=10 makes every epoch a stall (none gets within 10x the objective of its
    estimated limit, the first included, measured against the start): eta0 / 5 ** epochs.

    Plain SGD: its plateau is a noise floor that a smaller step lowers. SAGA has
    none (its plateau is the optimum), and stops there instead.
    """
    X, y = standardised("iris")
    common = dict(eta0=0.1, tol=10.0, n_iter_no_change=1, max_iter=4, random_state=0)
    clf = SoftmaxRegressor(learning_rate="adaptive", solver="sgd", **common).fit(X, y)
    assert clf.n_iter_ == 4
    assert clf._optimizer.current_eta() == pytest.approx(0.1 / 5**4, rel=1e-12)
    saga = SoftmaxRegressor(learning_rate="adaptive", solver="saga", **common).fit(X, y)
    assert saga.n_iter_ == 1 and saga._optimizer.current_eta() == 0.1
    # The constant schedule stops at the first stall instead.
    clf = SoftmaxRegressor(learning_rate="constant", solver="sgd", **common).fit(X, y)
    assert clf.n_iter_ == 1
    assert clf._optimizer.current_eta() == 0.1


def test_tol_applies_to_training_loss_without_early_stopping():
    X, y = standardised("iris")
    common = dict(learning_rate="constant", eta0=0.05, max_iter=50, random_state=0)
    # A huge tol: no epoch improves by tol -> n_iter_no_change epochs.
    clf = SoftmaxRegressor(tol=1e3, n_iter_no_change=3, **common).fit(X, y)
    assert clf.n_iter_ == 3
    assert clf.best_loss_ == min(clf.loss_curve_)
    assert clf.validation_scores_ is None and clf.best_validation_score_ is None
    # tol=None: all max_iter epochs, no ConvergenceWarning.
    clf = SoftmaxRegressor(tol=None, **common).fit(X, y)
    assert clf.n_iter_ == 50


# ---------------------------------------------------------------- momentum


def test_momentum_and_nesterov_updates_follow_torch_formulas():
    """v = mu * v + g; p -= eta * v (heavy ball) or eta * (g + mu * v) (Nesterov)."""
    rng = np.random.default_rng(0)
    grads = [rng.normal(size=3) for _ in range(4)]
    for nesterov in [False, True]:
        p = [np.zeros(3)]
        opt = SGDOptimizer(
            p,
            learning_rate="constant",
            eta0=0.1,
            power_t=0.5,
            alpha=0.0,
            momentum=0.9,
            nesterov=nesterov,
        )
        expected, v = np.zeros(3), np.zeros(3)
        for g in grads:
            opt.step(p, [g.copy()], 1)
            v = 0.9 * v + g
            expected -= 0.1 * (g + 0.9 * v if nesterov else v)
        assert_allclose(p[0], expected, rtol=1e-13)


def test_momentum_reaches_a_loss_in_fewer_epochs():
    X, y = standardised("digits")
    common = dict(
        learning_rate="constant",
        eta0=0.002,
        alpha=1e-3,
        max_iter=40,
        tol=None,
        random_state=0,
        solver="sgd",  # momentum against plain SGD steps
    )
    curves = {
        name: SoftmaxRegressor(**common, **kw).fit(X, y).loss_curve_
        for name, kw in {
            "plain": {},
            "momentum": dict(momentum=0.9),
            "nesterov": dict(momentum=0.9, nesterov=True),
        }.items()
    }
    target = 0.3
    plain = _epochs_to_reach(curves["plain"], target)
    assert plain > 2 * _epochs_to_reach(curves["momentum"], target)
    assert plain > 2 * _epochs_to_reach(curves["nesterov"], target)
    assert curves["momentum"] != curves["nesterov"]


# ---------------------------------------------------------------- averaging


def test_averaged_weights_are_the_mean_of_the_iterates():
    rng = np.random.default_rng(1)
    p = [np.zeros(3)]
    opt = SGDOptimizer(p, learning_rate="constant", eta0=0.5, power_t=0.5, alpha=0.0, average=20)
    iterates = []
    for _ in range(10):
        opt.step(p, [rng.normal(size=3)], 4)
        iterates.append(p[0].copy())
    # average=20: only iterates reached after more than 20 samples (t = 24, ..., 40).
    assert opt.n_averaged == 5
    assert_allclose(opt.averages[0], np.mean(iterates[5:], axis=0), rtol=1e-13)


def test_average_int_delays_averaging():
    X, y = standardised("iris")
    common = dict(
        learning_rate="constant", eta0=0.3, max_iter=20, tol=None, random_state=0, solver="sgd"
    )
    plain = SoftmaxRegressor(**common).fit(X, y)
    late = SoftmaxRegressor(average=10**9, **common).fit(X, y)
    assert_array_equal(late.coef_, plain.coef_)  # never started: raw weights
    early = SoftmaxRegressor(average=len(y) * 10, **common).fit(X, y)
    assert not np.array_equal(early.coef_, plain.coef_)
    assert_array_equal(early._raw_coef, plain.coef_)  # same trajectory, averaged output


def test_averaging_lowers_distance_to_optimum_at_constant_step():
    X, y = standardised("iris")
    C = 0.1
    P = LogisticRegression(C=C, tol=1e-10, max_iter=10_000).fit(X, y).predict_proba(X)
    common = dict(
        alpha=1 / (C * len(y)),
        learning_rate="constant",
        eta0=0.6,  # a step whose noise ball plain SGD cannot leave
        batch_size=16,
        max_iter=200,
        tol=None,
        random_state=0,
        solver="sgd",  # SAGA has no noise ball to average away
    )
    err_plain = np.abs(SoftmaxRegressor(**common).fit(X, y).predict_proba(X) - P).max()
    err_avg = np.abs(SoftmaxRegressor(average=True, **common).fit(X, y).predict_proba(X) - P).max()
    assert err_avg < err_plain / 5


@pytest.mark.parametrize(
    "name, C, batch_size, burn_in_eta0, burn_in_epochs, eta0, epochs, atol",
    [
        ("iris", 0.1, 30, 0.3, 100, 0.1, 200, 1e-3),
        # The bias of a constant step needs a small one on digits: 8000 epochs of
        # 3 batches, ~5 s, the slowest test of the suite (measured error 6.1e-4).
        ("digits", 0.01, 599, 0.3, 300, 0.01, 8000, 1e-3),
    ],
)
def test_average_reaches_logistic_regression_optimum(
    name, C, batch_size, burn_in_eta0, burn_in_epochs, eta0, epochs, atol
):
    """average=True at a constant step lands near LogisticRegression's proba.

    Constant-step averaged SGD keeps an O(eta) bias on a non-quadratic loss (on
    digits about 1e-2 at eta0=0.3 and 3.5e-3 at 0.1, in max |proba| difference),
    so the averaged phase runs at a small eta0; a burn-in at a larger step,
    continued by a warm start that switches averaging on, gets near the optimum
    first. The error left is the averaged transient, decaying like 1 / epochs.
    """
    X, y = standardised(name)
    lr = LogisticRegression(C=C, tol=1e-10, max_iter=10_000).fit(X, y)
    clf = SoftmaxRegressor(
        alpha=1 / (C * len(y)),
        learning_rate="constant",
        eta0=burn_in_eta0,
        batch_size=batch_size,
        max_iter=burn_in_epochs,
        tol=None,
        random_state=0,
        warm_start=True,
        solver="sgd",  # SAGA has no bias to average away
    ).fit(X, y)
    assert np.abs(clf.predict_proba(X) - lr.predict_proba(X)).max() > 2e-3
    clf.set_params(average=True, eta0=eta0, max_iter=epochs).fit(X, y)
    assert_allclose(clf.predict_proba(X), lr.predict_proba(X), atol=atol, rtol=0)


# ---------------------------------------------------------------- early stopping


def _noisy_digits(seed=0, noise=0.3):
    X, y = standardised("digits")
    rng = np.random.default_rng(seed)
    y = y.copy()
    flip = rng.random(len(y)) < noise
    y[flip] = rng.integers(0, 10, flip.sum())
    return X, y


def _validation_log_loss(clf, X, y, rows):
    proba = clf.predict_proba(X[rows])
    return -np.mean(np.log(proba[np.arange(len(rows)), np.searchsorted(clf.classes_, y[rows])]))


# Tiny alpha and noisy labels: the validation loss rises after a while (overfitting).
OVERFITTING = dict(
    alpha=1e-8,
    learning_rate="constant",
    eta0=0.1,
    batch_size=32,
    max_iter=100,
    early_stopping=True,
    tol=0.0,
    random_state=0,
)


def test_early_stopping_restores_the_best_weights():
    X, y = _noisy_digits()
    clf = SoftmaxRegressor(**OVERFITTING, n_iter_no_change=6).fit(X, y)
    scores = np.asarray(clf.validation_scores_)
    best = int(np.argmax(scores))
    # Stopped by early stopping, n_iter_no_change epochs after the best one.
    assert clf.n_iter_ == len(scores) == best + 1 + 6 < 100
    assert scores[-1] < scores[best] - 1e-3  # the last epoch really was worse
    assert clf.best_validation_score_ == scores[best]
    assert clf.best_loss_ == clf.loss_curve_[best]

    # The validation rows, as fit drew them.
    _, rows = clf._validation_split(np.searchsorted(clf.classes_, y), np.ones(len(y)))
    assert len(rows) == round(0.1 * len(y))
    val_loss = _validation_log_loss(clf, X, y, rows)
    # validation_scores_ holds the negated log-loss; the returned model is the best.
    assert val_loss == pytest.approx(-scores.max(), rel=1e-9)
    assert val_loss < -scores[-1] - 1e-3
    # Stratified: class proportions of the validation rows follow the data's.
    counts = np.bincount(y[rows], minlength=10) / len(rows)
    assert_allclose(counts, np.bincount(y, minlength=10) / len(y), atol=0.01)


def test_early_stopping_accuracy_scoring():
    X, y = _noisy_digits(seed=1)
    common = dict(
        alpha=1e-8,
        learning_rate="constant",
        eta0=0.1,
        batch_size=32,
        max_iter=30,
        early_stopping=True,
        n_iter_no_change=4,
        random_state=0,
    )
    clf = SoftmaxRegressor(scoring="accuracy", **common).fit(X, y)
    scores = np.asarray(clf.validation_scores_)
    assert np.all((scores >= 0) & (scores <= 1))
    _, rows = clf._validation_split(np.searchsorted(clf.classes_, y), np.ones(len(y)))
    assert clf.score(X[rows], y[rows]) == pytest.approx(scores.max()) == clf.best_validation_score_
    # A different watched score gives a different curve (and not negative numbers).
    by_loss = SoftmaxRegressor(scoring="loss", **common).fit(X, y)
    assert np.all(np.asarray(by_loss.validation_scores_) < 0)


def test_early_stopping_refused_by_partial_fit():
    # As MLPClassifier: one chunk has no held-out set (tests/test_bad_input.py).
    X, y = standardised("iris")
    with pytest.raises(ValueError, match="partial_fit does not support early_stopping"):
        SoftmaxRegressor(early_stopping=True).partial_fit(X, y, classes=[0, 1, 2])


# ---------------------------------------------------------------- continuity

_STATEFUL = dict(learning_rate="invscaling", eta0=0.2, momentum=0.8, nesterov=True, average=200)


@pytest.mark.parametrize("shuffle", [False, True])
def test_partial_fit_n_times_equals_fit_max_iter_n(shuffle):
    X, y = standardised("iris")
    # solver="sgd": partial_fit's steps (fit's default, SAGA, needs the same rows
    # at every epoch, which a stream does not bring).
    common = dict(batch_size=32, shuffle=shuffle, random_state=0, solver="sgd", **_STATEFUL)
    pf = SoftmaxRegressor(**common)
    for _ in range(4):
        pf.partial_fit(X, y, classes=np.unique(y))
    fit = SoftmaxRegressor(max_iter=4, tol=None, **common).fit(X, y)
    assert_array_equal(pf.coef_, fit.coef_)
    assert_array_equal(pf.intercept_, fit.intercept_)
    assert pf.t_ == fit.t_ == 4 * len(y)
    assert pf.n_iter_ == fit.n_iter_ == 4
    # fit records the objective after each epoch, partial_fit the progressive
    # loss of its chunk (before each batch's update): the same at the start,
    # apart as training moves.
    assert len(pf.loss_curve_) == len(fit.loss_curve_) == 4
    assert_allclose(fit.loss_curve_, [objective_at(fit, X, y, e) for e in range(1, 5)])


def test_warm_start_continues_exactly():
    X, y = standardised("digits")
    # solver="sgd": a fit's SAGA memory is its own (a warm start on other rows
    # would step with a stale mean gradient), so SAGA continues the weights and
    # the optimiser, not the exact trajectory.
    common = dict(batch_size=64, tol=None, random_state=0, solver="sgd", **_STATEFUL)
    once = SoftmaxRegressor(max_iter=5, **common).fit(X, y)
    warm = SoftmaxRegressor(max_iter=3, warm_start=True, **common).fit(X, y)
    warm.set_params(max_iter=2).fit(X, y)
    assert_array_equal(warm.coef_, once.coef_)
    assert_array_equal(warm.intercept_, once.intercept_)
    assert warm.t_ == once.t_ == 5 * len(y)
    assert_array_equal(warm.loss_curve_, once.loss_curve_)
    # Without warm_start the second fit restarts: t_ and weights differ.
    cold = SoftmaxRegressor(max_iter=3, **common).fit(X, y)
    cold.set_params(max_iter=2).fit(X, y)
    assert cold.t_ == 2 * len(y)
    assert not np.array_equal(cold.coef_, once.coef_)


def test_pickle_mid_training_and_resume_is_identical():
    X, y = standardised("digits")
    common = dict(batch_size=64, random_state=0, **_STATEFUL)
    straight = SoftmaxRegressor(**common)
    paused = SoftmaxRegressor(**common)
    for _ in range(2):
        straight.partial_fit(X, y, classes=np.unique(y))
        paused.partial_fit(X, y, classes=np.unique(y))
    paused = pickle.loads(pickle.dumps(paused))
    for _ in range(3):
        straight.partial_fit(X, y)
        paused.partial_fit(X, y)
    assert_array_equal(paused.coef_, straight.coef_)
    assert_array_equal(paused.intercept_, straight.intercept_)
    assert paused.t_ == straight.t_


def test_coef_init_and_intercept_init():
    X, y = standardised("iris")
    rng = np.random.default_rng(0)
    W0, b0 = rng.normal(size=(3, 4)), rng.normal(size=3)
    common = dict(learning_rate="constant", max_iter=1, tol=None, random_state=0)
    # A negligible step: the model stays at the given init.
    tiny = SoftmaxRegressor(eta0=1e-12, **common).fit(X, y, coef_init=W0, intercept_init=b0)
    assert_allclose(tiny.coef_, W0, atol=1e-9)
    assert_allclose(tiny.intercept_, b0, atol=1e-9)
    # One epoch from the init differs from one epoch from zeros.
    from_init = SoftmaxRegressor(eta0=0.1, **common).fit(X, y, coef_init=W0, intercept_init=b0)
    from_zero = SoftmaxRegressor(eta0=0.1, **common).fit(X, y)
    assert not np.allclose(from_init.coef_, from_zero.coef_)
    assert from_init.loss_curve_[0] != from_zero.loss_curve_[0]
    # The inputs are not modified.
    assert_array_equal(W0, np.random.default_rng(0).normal(size=(3, 4)))

    with pytest.raises(ValueError, match="coef_init has shape"):
        SoftmaxRegressor(**common).fit(X, y, coef_init=np.zeros((4, 3)))
    with pytest.raises(ValueError, match="intercept_init has shape"):
        SoftmaxRegressor(**common).fit(X, y, intercept_init=np.zeros(2))
    yb = (y > 0).astype(int)  # binary: one row of weights
    binary = SoftmaxRegressor(eta0=1e-12, **common).fit(
        X, yb, coef_init=W0[:1], intercept_init=b0[:1]
    )
    assert_allclose(binary.coef_, W0[:1], atol=1e-9)
    with pytest.raises(ValueError, match="coef_init has shape"):
        SoftmaxRegressor(**common).fit(X, yb, coef_init=W0)


# ---------------------------------------------------------------- divergence


def test_divergence_raises_clear_error_within_one_epoch():
    X, y = standardised("digits")
    with pytest.raises(ValueError, match="diverged in epoch 1") as info:
        SoftmaxRegressor(learning_rate="constant", eta0=1e6, random_state=0).fit(X, y)
    message = str(info.value)
    assert "learning_rate='constant'" in message and "eta0" in message
    assert "smaller eta0" in message and "scale the features" in message


@pytest.mark.parametrize("warm_start", [False, True])
def test_divergence_keeps_the_previous_model(warm_start):
    X, y = standardised("digits")
    clf = SoftmaxRegressor(max_iter=3, tol=None, random_state=0, warm_start=warm_start)
    clf.fit(X, y)
    before = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in vars(clf).items()}
    proba = clf.predict_proba(X)
    clf.set_params(eta0=1e6, learning_rate="constant")
    with pytest.raises(ValueError, match="diverged"):
        clf.fit(X, y)
    assert np.isfinite(clf.coef_).all() and np.isfinite(clf.intercept_).all()
    assert_array_equal(clf.predict_proba(X), proba)
    assert clf.t_ == before["t_"] and clf.n_iter_ == before["n_iter_"]
    assert_array_equal(clf.coef_, before["coef_"])


def test_divergence_on_a_fresh_estimator_leaves_it_unfitted():
    X, y = standardised("digits")
    clf = SoftmaxRegressor(learning_rate="constant", eta0=1e6)
    with pytest.raises(ValueError, match="diverged"):
        clf.fit(X, y)
    assert not hasattr(clf, "coef_")
    with pytest.raises(ValueError, match="diverged in epoch 1"):
        clf.partial_fit(X, y, classes=np.unique(y))
    assert not hasattr(clf, "coef_") and not hasattr(clf, "classes_")


# ---------------------------------------------------------------- interruption


def _interrupt_at_call(monkeypatch, k, action):
    original = EpochEngine.residual_
    calls = {"n": 0}

    def residual_(self, Z, y, weights):
        calls["n"] += 1
        if calls["n"] == k:
            action()
        return original(self, Z, y, weights)

    monkeypatch.setattr(EpochEngine, "residual_", residual_)
    return calls


def _raise_keyboard_interrupt():
    raise KeyboardInterrupt


def test_keyboard_interrupt_in_a_batch_keeps_a_usable_model(monkeypatch):
    X, y = standardised("digits")
    _interrupt_at_call(monkeypatch, 20, _raise_keyboard_interrupt)  # in epoch 2 (15 batches)
    clf = SoftmaxRegressor(batch_size=128, max_iter=50, random_state=0, average=True)
    with pytest.warns(UserWarning, match="interrupted"):
        assert clf.fit(X, y) is clf
    # Epoch 1 is 15 batches (14 x 128 + 5); batch 20 was never applied.
    assert clf.t_ == len(y) + 4 * 128
    assert clf.n_iter_ == 1 and len(clf.loss_curve_) == 1
    assert np.isfinite(clf.coef_).all()
    assert clf.score(X, y) > 0.8
    # The optimiser state is consistent: training resumes with partial_fit.
    monkeypatch.undo()
    clf.partial_fit(X, y)
    assert clf.t_ == 2 * len(y) + 4 * 128


@pytest.mark.skipif(
    signal.getsignal(signal.SIGINT) is not signal.default_int_handler,
    reason="SIGINT is handled by somebody else here",
)
def test_ctrl_c_ends_training_after_the_current_batch(monkeypatch):
    X, y = standardised("digits")
    _interrupt_at_call(monkeypatch, 20, lambda: signal.raise_signal(signal.SIGINT))
    clf = SoftmaxRegressor(batch_size=128, max_iter=50, random_state=0)
    with pytest.warns(UserWarning, match="interrupted"):
        clf.fit(X, y)
    assert clf.t_ == len(y) + 5 * 128  # batch 20, in flight, was completed
    assert clf.n_iter_ == 2
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_keyboard_interrupt_with_early_stopping_keeps_the_best_model(monkeypatch):
    X, y = _noisy_digits()
    params = dict(OVERFITTING, n_iter_no_change=100)
    full = SoftmaxRegressor(**params, verbose=0).set_params(max_iter=25).fit(X, y)
    scores = np.asarray(full.validation_scores_)
    assert np.argmax(scores) < 20  # the validation loss rises before epoch 21
    n_batches = math.ceil(len(y) * 0.9 / 32)
    _interrupt_at_call(monkeypatch, 20 * n_batches + 3, _raise_keyboard_interrupt)
    clf = SoftmaxRegressor(**params)
    with pytest.warns(UserWarning, match="best on the validation set"):
        clf.fit(X, y)
    assert_array_equal(clf.validation_scores_, scores[:20])
    assert clf.best_validation_score_ == scores[:20].max()
    _, rows = clf._validation_split(np.searchsorted(clf.classes_, y), np.ones(len(y)))
    assert _validation_log_loss(clf, X, y, rows) == pytest.approx(-scores[:20].max(), rel=1e-9)


# ---------------------------------------------------------------- verbose


def test_verbose_prints_one_flushed_line_per_epoch(capsys):
    X, y = standardised("iris")
    SoftmaxRegressor(max_iter=3, tol=None, verbose=1, random_state=0).fit(X, y)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3
    for epoch, line in enumerate(lines, start=1):
        assert line.startswith(f"Epoch {epoch},")
        for field in ["loss:", "eta:", "elapsed:"]:
            assert field in line
        assert "validation" not in line

    SoftmaxRegressor(max_iter=3, tol=None, verbose=1, early_stopping=True, random_state=0).fit(X, y)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3 and all("validation loss:" in line for line in lines)


def test_verbose_zero_prints_nothing(capsys):
    X, y = standardised("iris")
    clf = SoftmaxRegressor(max_iter=3, tol=None, random_state=0, early_stopping=True)
    clf.fit(X, y)
    clf.set_params(early_stopping=False).partial_fit(X, y)
    assert capsys.readouterr().out == ""


def test_objective_reference_agrees_with_loss_curve():
    """fit's loss_curve_ is the objective of :mod:`sksoftmax._loss` at the weights
    it returns, exactly, and best_loss_ is that of the returned model."""
    X, y = standardised("iris")
    for params in [dict(), dict(average=True), dict(solver="sgd", momentum=0.5)]:
        clf = SoftmaxRegressor(max_iter=3, tol=None, random_state=0, **params).fit(X, y)
        expected = objective(clf.coef_, clf.intercept_, X, y, alpha=clf.alpha)
        assert clf.loss_curve_[-1] == pytest.approx(expected, rel=1e-12)
        clf = SoftmaxRegressor(random_state=0, **params).fit(X, y)
        expected = objective(clf.coef_, clf.intercept_, X, y, alpha=clf.alpha)
        assert clf.best_loss_ == pytest.approx(expected, rel=1e-12)


def objective_at(model, X, y, epochs):
    """The objective of ``model``'s parameters refitted for ``epochs`` epochs."""
    again = SoftmaxRegressor(**{**model.get_params(), "max_iter": epochs, "tol": None}).fit(X, y)
    return objective(again.coef_, again.intercept_, X, y, alpha=again.alpha)
