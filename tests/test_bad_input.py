"""Bad hyperparameters and arguments: a clear error naming them, and nothing changed.

Regression tests for the defects a fuzzing campaign found (issue 12); the
campaign itself runs in test_fuzz.py.
"""

import pickle
import signal

import numpy as np
import pytest
import scipy.sparse as sp
from _data import standardised
from sklearn.utils._param_validation import InvalidParameterError

from sksoftmax import SoftmaxRegressor
from sksoftmax._engine import EpochEngine

ENGINES = ["numpy", "compiled"]


def _data(engine):
    """Standardised iris, or 2**18 x 4 rows of it for the compiled engine (2**20 entries)."""
    X, y = standardised("iris")
    if engine == "compiled":
        pytest.importorskip("numba")
        reps = 2**18 // len(y) + 1
        X, y = np.tile(X, (reps, 1))[: 2**18], np.tile(y, reps)[: 2**18]
    return np.ascontiguousarray(X), y


def _uses_compiled_engine(X, n_params=3):
    engine = EpochEngine(X, n_params, 128)
    return engine._dense_compiled_for(np.zeros((n_params, X.shape[1]), X.dtype))


# ------------------------------------------------------------ class_weight


@pytest.mark.parametrize(
    "class_weight, message",
    [
        ({0: -0.5}, r"class_weight\[0\] must be a finite non-negative number, got -0.5"),
        ({0: -5.0}, r"class_weight\[0\] must be a finite non-negative number, got -5.0"),
        ({0: np.nan}, r"class_weight\[0\] must be a finite non-negative number, got nan"),
        ({0: np.inf}, r"class_weight\[0\] must be a finite non-negative number, got inf"),
        ({1: "a"}, r"class_weight\[1\] must be a finite non-negative number, got 'a'"),
        ({1: None}, r"class_weight\[1\] must be a finite non-negative number, got None"),
        ({0: True}, r"class_weight\[0\] must be a finite non-negative number, got True"),
        ({0: [1.0]}, r"class_weight\[0\] must be a finite non-negative number"),
        ({7: 1.0}, r"class_weight has labels \[7\] that are not among the classes \[0, 1, 2\]"),
    ],
)
@pytest.mark.parametrize("method", ["fit", "partial_fit"])
def test_class_weight_values_are_validated(class_weight, message, method):
    X, y = standardised("iris")
    clf = SoftmaxRegressor(class_weight=class_weight)
    kwargs = {"classes": [0, 1, 2]} if method == "partial_fit" else {}
    with pytest.raises(ValueError, match=message):
        getattr(clf, method)(X, y, **kwargs)
    assert not hasattr(clf, "coef_")


def test_class_weight_zero_and_numpy_numbers_are_fine():
    X, y = standardised("iris")
    weights = {0: np.float32(0.0), 1: np.int64(2), 2: 0.5}
    clf = SoftmaxRegressor(class_weight=weights, max_iter=5, tol=None, random_state=0).fit(X, y)
    assert np.isfinite(clf.coef_).all()


def test_weights_whose_sum_overflows_are_refused():
    X, y = standardised("iris")
    clf = SoftmaxRegressor(class_weight={0: 1e308, 1: 1e308, 2: 1e308})
    with pytest.raises(ValueError, match="too large: their sum overflows.*class_weight"):
        clf.fit(X, y)
    with pytest.raises(ValueError, match="too large: their sum overflows.*sample_weight"):
        SoftmaxRegressor().fit(X, y, sample_weight=np.full(len(y), 1e307))


# ------------------------------------------------------------ average, power_t


@pytest.mark.parametrize("engine", ENGINES)
def test_average_beyond_int64_is_refused_on_both_engines(engine):
    X, y = _data(engine)
    assert _uses_compiled_engine(X) == (engine == "compiled")
    for average in [10**20, 2**63]:
        with pytest.raises(InvalidParameterError, match="'average' parameter"):
            SoftmaxRegressor(average=average).fit(X, y)
    # The largest int64 trains on both engines, and never starts averaging.
    clf = SoftmaxRegressor(average=2**63 - 1, max_iter=1, tol=None, random_state=0)
    plain = SoftmaxRegressor(max_iter=1, tol=None, random_state=0)
    np.testing.assert_array_equal(clf.fit(X, y).coef_, plain.fit(X, y).coef_)


@pytest.mark.parametrize("power_t", [-300, -0.5, 10.5, np.inf])
def test_power_t_out_of_range_is_refused(power_t):
    X, y = standardised("iris")
    clf = SoftmaxRegressor(power_t=power_t, learning_rate="invscaling", eta0=0.1)
    with pytest.raises(InvalidParameterError, match=r"'power_t' parameter .* \[0.0, 10.0\]"):
        clf.fit(X, y)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("power_t", [0.0, 10.0])
def test_power_t_at_the_bounds_trains_a_finite_model(engine, power_t):
    X, y = _data(engine)
    clf = SoftmaxRegressor(
        power_t=power_t, learning_rate="invscaling", eta0=0.1, max_iter=2, tol=None
    )
    clf.fit(X, y)
    assert np.isfinite(clf.coef_).all() and np.isfinite(clf.loss_curve_).all()


# ------------------------------------------------------------ coef_init, intercept_init

N_CLASSES, N_FEATURES = 3, 4


@pytest.mark.parametrize(
    "name, value, message",
    [
        ("coef_init", "abc", "coef_init must hold real numbers, got an array of dtype <U3"),
        ("coef_init", [["a"] * 4] * 3, "coef_init must hold real numbers"),
        ("coef_init", [[1.0, 2.0], [3.0]], "coef_init must be a rectangular array"),
        ("coef_init", sp.csr_matrix(np.ones((3, 4))), "coef_init must be a dense array"),
        ("coef_init", np.ones((3, 4)) * 1j, "coef_init must hold real numbers.*complex"),
        ("coef_init", np.full((3, 4), object()), "coef_init must hold real numbers"),
        ("coef_init", np.ones((4, 3)), r"coef_init has shape \(4, 3\), expected \(3, 4\)"),
        ("intercept_init", "abc", "intercept_init must hold real numbers"),
        ("intercept_init", [[1.0], [2.0, 3.0]], "intercept_init must be a rectangular array"),
        ("intercept_init", sp.csr_matrix(np.ones((1, 3))), "intercept_init must be a dense"),
        ("intercept_init", np.ones((3, 1)), r"intercept_init has shape \(3, 1\), expected"),
        ("intercept_init", [1.0, np.nan, 0.0], "intercept_init contains NaN or infinity"),
        ("coef_init", np.full((3, 4), 1e300), "coef_init and intercept_init put logits past"),
        ("intercept_init", [1e16, 0.0, 0.0], "coef_init and intercept_init put logits past"),
    ],
)
def test_bad_initial_weights_name_the_argument(name, value, message):
    X, y = standardised("iris")
    fitted = SoftmaxRegressor(max_iter=2, tol=None, warm_start=True, random_state=0).fit(X, y)
    before = pickle.dumps(fitted)
    with pytest.raises(ValueError, match=message):
        fitted.fit(X, y, **{name: value})
    assert pickle.dumps(fitted) == before


# ------------------------------------------------------------ np.errstate


@pytest.mark.parametrize("engine", ENGINES)
def test_errstate_raise_does_not_leak_floating_point_errors(engine):
    """scikit-learn's test_large_regularization fits under np.errstate(all="raise")."""
    X, y = _data(engine)
    for params in [dict(alpha=1e5), dict(alpha=1e5, learning_rate="optimal")]:
        clf = SoftmaxRegressor(max_iter=3, tol=None, random_state=0, **params)
        for method in ("fit", "partial_fit"):
            # A finite model, or the package's own divergence message (whether
            # this step diverges is the training's business): never numpy's error.
            try:
                with np.errstate(all="raise"):
                    getattr(clf, method)(
                        X, y, **({"classes": [0, 1, 2]} if method == "partial_fit" else {})
                    )
            except ValueError as exc:
                assert str(exc).startswith("Training diverged"), exc
            else:
                assert np.isfinite(clf.coef_).all() and np.isfinite(clf.intercept_).all()
    # A step that blows up gives the package's own message, not numpy's.
    clf = SoftmaxRegressor(eta0=1e20, learning_rate="constant", max_iter=3, tol=None)
    with np.errstate(all="raise"), pytest.raises(ValueError, match="Training diverged"):
        clf.fit(X, y)


# ------------------------------------------------------------ partial_fit


def test_partial_fit_refuses_early_stopping_as_mlp_does():
    X, y = standardised("iris")
    clf = SoftmaxRegressor(early_stopping=True)
    with pytest.raises(ValueError, match="partial_fit does not support early_stopping=True"):
        clf.partial_fit(X, y, classes=[0, 1, 2])
    assert not hasattr(clf, "classes_")
    # After a fit with early stopping, too: nothing is changed.
    clf.fit(X, y)
    before = pickle.dumps(clf)
    with pytest.raises(ValueError, match="early_stopping=True"):
        clf.partial_fit(X, y)
    assert pickle.dumps(clf) == before
    clf.set_params(early_stopping=False).partial_fit(X, y)


# ------------------------------------------------------------ Ctrl-C, in process


@pytest.mark.skipif(
    signal.getsignal(signal.SIGINT) is not signal.default_int_handler,
    reason="SIGINT is handled by somebody else here",
)
def test_a_press_stays_pending_across_fits_until_a_gap(monkeypatch):
    from sksoftmax import _softmax_regressor as module

    X, y = standardised("iris")
    original = EpochEngine.residual_
    presses = {"at_call": 2, "n": 0}

    def residual_(self, *args):
        presses["n"] += 1
        if presses["n"] == presses["at_call"]:
            signal.raise_signal(signal.SIGINT)
        return original(self, *args)

    monkeypatch.setattr(EpochEngine, "residual_", residual_)
    clf = SoftmaxRegressor(max_iter=5, tol=None, random_state=0)
    with pytest.warns(UserWarning, match="interrupted"):
        clf.fit(X, y)  # the first press: the fit ends, the press is pending
    fitted = pickle.dumps(clf)
    presses.update(n=0)
    with pytest.raises(KeyboardInterrupt, match="second Ctrl-C"):
        clf.fit(X, y)  # a fit at once after: its first press is the second
    assert pickle.dumps(clf) == fitted
    # KeyboardInterrupt gave the user control back: the next press is a first again.
    presses.update(n=0)
    with pytest.warns(UserWarning, match="interrupted"):
        clf.fit(X, y)
    # So is a press in a fit that starts after a gap of GAP seconds without fits.
    monkeypatch.setattr(module._PendingCtrlC, "GAP", 0.0)
    presses.update(n=0)
    with pytest.warns(UserWarning, match="interrupted"):
        clf.fit(X, y)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_errstate_raise_does_not_leak_from_validation():
    """1e300 weights cast to float32 overflow in scikit-learn's _check_sample_weight."""
    X, y = standardised("iris")
    X = X.astype(np.float32)
    with np.errstate(all="raise"), pytest.raises(ValueError, match="sample_weight"):
        SoftmaxRegressor().fit(X, y, sample_weight=np.full(len(y), 1e300))


# ------------------------------------------------------------ messages name the argument


@pytest.mark.parametrize(
    "X, y, sample_weight, message",
    [
        (np.zeros((0, 3)), np.zeros(0), None, r"^Invalid X: Found array with 0 sample\(s\)"),
        (np.zeros((4, 0)), [0, 1, 0, 1], None, r"^Invalid X: Found array with 0 feature\(s\)"),
        ([["a", "b"]] * 4, [0, 1, 0, 1], None, "^Invalid X: could not convert string to float"),
        (np.ones((4, 2)) * 1j, [0, 1, 0, 1], None, "^Invalid X: Complex data not supported"),
        (np.ones((4, 2)), [0.5, 0.1, 0.2, 0.3], None, "^Invalid y: Unknown label type"),
        (np.ones((4, 2)), np.array([0, "a", 1, "a"], dtype=object), None, "^Invalid y: "),
        (np.ones((5, 2)), [0, 1, 0, 1], None, "^Invalid y: Found input variables with incons"),
        (np.ones((4, 2)), [0, 1, 0, 1], ["a"] * 4, "^Invalid sample_weight: could not convert"),
    ],
)
def test_validation_errors_name_their_argument(X, y, sample_weight, message):
    """scikit-learn's messages, unchanged but for the argument's name in front."""
    with pytest.raises((ValueError, TypeError), match=message):
        SoftmaxRegressor().fit(X, y, sample_weight=sample_weight)


def test_predict_and_partial_fit_errors_name_their_argument():
    X, y = standardised("iris")
    clf = SoftmaxRegressor(max_iter=2, tol=None).fit(X, y)
    with pytest.raises(ValueError, match="^Invalid X: Found array with 0 sample"):
        clf.predict(np.zeros((0, 4)))
    with pytest.raises(ValueError, match="^Invalid classes: Mix of label input types"):
        SoftmaxRegressor().partial_fit(X, y, classes=[0, "a"])


def test_a_failed_fit_puts_back_the_state_of_a_random_state_instance():
    """The fuzz found it: a RandomState as random_state is part of the model."""
    X, y = standardised("iris")
    clf = SoftmaxRegressor(
        random_state=np.random.RandomState(0), eta0=1e20, learning_rate="constant"
    )
    before = pickle.dumps(clf)
    with pytest.raises(ValueError, match="Training diverged"):
        clf.fit(X, y)  # after drawing the first epoch's permutation
    assert pickle.dumps(clf) == before
