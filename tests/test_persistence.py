"""Saving and loading: pickle and skops keep the whole fitted state, exactly.

The oracle is the original model: a loaded copy must hold the same state
(arrays bit for bit, with their dtype and memory order), predict the same and
train on exactly as the original does. skops must find no type to trust but
SoftmaxRegressor itself, so that its state is arrays, builtins and numpy
random states only.
"""

import copy
import copyreg
import io
import pickle
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import BaseEstimator
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import StandardScaler

from sksoftmax import SoftmaxRegressor
from sksoftmax._persistence import STATE_KEY, from_plain, persistent, to_plain

PUBLIC_NAME = f"{SoftmaxRegressor.__module__}.{SoftmaxRegressor.__qualname__}"


def _digits(dtype=np.float64):
    X, y = load_digits(return_X_y=True)
    X = StandardScaler().fit_transform(X).astype(dtype)
    return X[:900], y[:900], X[900:1300], y[900:1300]


def _fitted(**params):
    X, y, *_ = _digits()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return SoftmaxRegressor(**{"random_state": 0, "max_iter": 5, **params}).fit(X, y)


def _mid_partial_fit(**params):
    X, y, *_ = _digits()
    model = SoftmaxRegressor(random_state=0, **params)
    return model.partial_fit(X[:300], y[:300], classes=np.unique(y)).partial_fit(
        X[300:600], y[300:600]
    )


def _early_stopped():
    X, y, *_ = _digits()
    model = SoftmaxRegressor(
        random_state=0, early_stopping=True, n_iter_no_change=2, tol=1e-2, momentum=0.5
    ).fit(X, y)
    assert model.validation_scores_ and model.n_iter_ < model.max_iter
    return model


def _binary_sparse_float32():
    X, y = load_breast_cancer(return_X_y=True)
    X = sp.csr_matrix(StandardScaler().fit_transform(X).astype(np.float32))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return SoftmaxRegressor(random_state=0, max_iter=3, average=True).fit(X, y)


MODELS = {
    "fitted": lambda: _fitted(),
    "momentum-nesterov": lambda: _fitted(momentum=0.9, nesterov=True),
    "averaged": lambda: _fitted(average=True),
    "averaged-later": lambda: _fitted(average=2000, momentum=0.5),
    "constant-eta0": lambda: _fitted(learning_rate="constant", eta0=0.01),
    "optimal-class-weight": lambda: _fitted(learning_rate="optimal", class_weight={0: 2.0}),
    "random-state-instance": lambda: _fitted(random_state=np.random.RandomState(3)),
    "mid-partial_fit": lambda: _mid_partial_fit(),
    "mid-partial_fit-momentum-average": lambda: _mid_partial_fit(momentum=0.9, average=True),
    "early-stopped": _early_stopped,
    "binary-sparse-float32-averaged": _binary_sparse_float32,
}


def _continue(model):
    """Train ``model`` on: one more ``partial_fit`` on rows it has not seen.

    An early-stopping model (which ``partial_fit`` may refuse) goes on by a
    warm-started ``fit`` instead, from its optimiser state.
    """
    if model.early_stopping:
        X, y, *_ = _digits()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            return model.set_params(warm_start=True, max_iter=3).fit(X, y)
    if model.coef_.shape[0] == 1:
        X, y = load_breast_cancer(return_X_y=True)
        X = sp.csr_matrix(StandardScaler().fit_transform(X).astype(np.float32))
        return model.partial_fit(X[::2], y[::2])
    *_, X_next, y_next = _digits()
    return model.partial_fit(X_next, y_next)


def assert_same_state(actual, expected, path="state"):
    """Equal values of equal types; arrays bit for bit, dtype and memory order too."""
    assert type(actual) is type(expected), path
    if isinstance(expected, np.ndarray):
        assert actual.dtype == expected.dtype, path
        assert actual.flags.c_contiguous == expected.flags.c_contiguous, path
        assert actual.flags.f_contiguous == expected.flags.f_contiguous, path
        np.testing.assert_array_equal(actual, expected, err_msg=path, strict=True)
    elif isinstance(expected, np.random.RandomState):
        assert_same_state(actual.get_state(legacy=False), expected.get_state(legacy=False), path)
    elif isinstance(expected, dict):
        assert actual.keys() == expected.keys(), path
        for key in expected:
            assert_same_state(actual[key], expected[key], f"{path}[{key!r}]")
    elif isinstance(expected, list | tuple):
        assert len(actual) == len(expected), path
        for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
            assert_same_state(a, e, f"{path}[{i}]")
    elif hasattr(expected, "__dict__"):
        assert_same_state(vars(actual), vars(expected), f"{path}.{type(expected).__name__}")
    elif isinstance(expected, float) and np.isnan(expected):
        assert np.isnan(actual), path
    else:
        assert actual == expected, path


def assert_same_model(loaded, original):
    """Same state, same predictions, and the same model after training on."""
    assert_same_state(loaded.__dict__, original.__dict__)
    X = _digits()[2] if original.coef_.shape[0] > 1 else None
    if X is not None:
        np.testing.assert_array_equal(loaded.predict_proba(X), original.predict_proba(X))
    assert_same_state(_continue(loaded).__dict__, _continue(original).__dict__)


def _walk(value):
    """Every object inside a state: containers' items and objects' attributes."""
    yield value
    if isinstance(value, dict):
        items = value.values()
    elif isinstance(value, list | tuple):
        items = value
    elif hasattr(value, "__dict__") and not isinstance(value, type):
        items = vars(value).values()
    else:
        return
    for item in items:
        yield from _walk(item)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_saved_state_has_no_sksoftmax_objects(name):
    """Without skops too: every helper object is saved as a dict."""
    state = MODELS[name]().__getstate__()
    leftovers = {
        type(v).__qualname__ for v in _walk(state) if type(v).__module__.startswith("sksoftmax")
    }
    assert not leftovers, f"register these with sksoftmax._persistence.persistent: {leftovers}"
    assert any(isinstance(v, dict) and STATE_KEY in v for v in _walk(state))


@pytest.mark.parametrize("name", sorted(MODELS))
def test_pickle_round_trip(name):
    model = MODELS[name]()
    assert_same_model(pickle.loads(pickle.dumps(model)), model)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_deepcopy(name):
    model = MODELS[name]()
    copied = copy.deepcopy(model)
    assert copied._optimizer is not model._optimizer
    assert_same_model(copied, model)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_skops_trusts_everything_but_the_estimator(name, tmp_path):
    sio = pytest.importorskip("skops.io")
    model = MODELS[name]()
    path = tmp_path / "model.skops"
    sio.dump(model, path)
    assert sio.get_untrusted_types(file=path) == [PUBLIC_NAME]
    loaded = sio.load(path, trusted=[PUBLIC_NAME])
    assert_same_model(loaded, model)


def test_skops_unfitted_model(tmp_path):
    sio = pytest.importorskip("skops.io")
    path = tmp_path / "model.skops"
    sio.dump(SoftmaxRegressor(alpha=0.1), path)
    assert sio.get_untrusted_types(file=path) == [PUBLIC_NAME]
    assert (
        sio.load(path, trusted=[PUBLIC_NAME]).get_params()
        == SoftmaxRegressor(alpha=0.1).get_params()
    )


def test_skops_refuses_without_trust(tmp_path):
    sio = pytest.importorskip("skops.io")
    path = tmp_path / "model.skops"
    sio.dump(_fitted(), path)
    with pytest.raises(sio.exceptions.UntrustedTypesFoundException, match="SoftmaxRegressor"):
        sio.load(path)


class _OldPickler(pickle.Pickler):
    """Pickles SoftmaxRegressor as versions before __getstate__ did: objects in __dict__."""

    def reducer_override(self, obj):
        if type(obj) is SoftmaxRegressor:
            return copyreg.__newobj__, (SoftmaxRegressor,), BaseEstimator.__getstate__(obj)
        return NotImplemented


@pytest.mark.parametrize("name", ["mid-partial_fit-momentum-average", "early-stopped"])
def test_pickles_of_the_previous_version_still_load(name):
    model = MODELS[name]()
    buffer = io.BytesIO()
    _OldPickler(buffer).dump(model)
    assert b"SGDOptimizer" in buffer.getvalue()  # the object itself, not a dict of it
    loaded = pickle.loads(buffer.getvalue())
    assert type(loaded._optimizer) is type(model._optimizer)
    assert_same_model(loaded, model)


def test_conversion_round_trip_is_exact_and_leaves_the_model_alone():
    model = _mid_partial_fit(momentum=0.9, average=True)
    before = copy.deepcopy(model.__dict__)
    plain = to_plain(model.__dict__)
    assert plain["_optimizer"][STATE_KEY] == type(model._optimizer).__name__
    assert plain["_optimizer"]["velocities"][0] is model._optimizer.velocities[0]  # no copies
    assert_same_state(from_plain(plain), model.__dict__)
    assert_same_state(model.__dict__, before)


def test_unknown_class_in_a_file_is_refused():
    with pytest.raises(ValueError, match="unknown class 'os.system'"):
        from_plain({"_optimizer": {STATE_KEY: "os.system", "t": 1}})


def test_registry_refuses_a_second_class_of_the_same_name():
    persistent(SoftmaxRegressor)  # registering the same class again is fine
    with pytest.raises(ValueError, match="already registered"):
        persistent(type("SoftmaxRegressor", (), {}))
