"""Training and prediction on array-API namespaces under ``array_api_dispatch``.

The oracle is the numpy engine: the same seed gives the same batches, so a
fit on torch (CPU) or array_api_strict arrays must give the numpy fit's model
to rounding. scikit-learn's own array-API checks run in tests/test_common.py.
"""

import pickle
import warnings
from functools import partial

import numpy as np
import pytest
import sklearn
from sklearn.datasets import make_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._array_api import get_namespace_and_device, move_estimator_to, move_to

from sksoftmax import SoftmaxRegressor
from sksoftmax._array_api import NamespaceOptimizer, NamespaceSAGAMemory, namespace_of
from sksoftmax._engine import EpochEngine
from sksoftmax._optim import SAGAMemory, SGDOptimizer
from sksoftmax._xp_engine import NamespaceEngine

torch = pytest.importorskip("torch")
array_api_strict = pytest.importorskip("array_api_strict")

NAMESPACES = {"torch": torch, "array_api_strict": array_api_strict}
# Same seed, same batches: only the rounding of the products may differ.
RTOL = {np.float64: 1e-6, np.float32: 1e-4}


@pytest.fixture(autouse=True)
def _dispatch():
    with sklearn.config_context(array_api_dispatch=True), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


def _data(n_classes=3, dtype=np.float64):
    X, y = make_classification(
        n_samples=160, n_features=6, n_informative=4, n_classes=n_classes, random_state=0
    )
    weights = np.random.RandomState(1).uniform(0.2, 2.0, len(y))
    return X.astype(dtype), y, weights


def _host(array):
    return move_to(array, xp=np, device="cpu")


def _xp(name, array, dtype=None):
    xp = NAMESPACES[name]
    return xp.asarray(array) if dtype is None else xp.asarray(array, dtype=dtype)


def _namespace_name(array):
    return namespace_of(array)[0].__name__


def _assert_same_model(model, reference, X, X_xp, dtype=np.float64):
    np.testing.assert_allclose(
        _host(model.predict_proba(X_xp)), reference.predict_proba(X), atol=RTOL[dtype]
    )
    np.testing.assert_allclose(_host(model.coef_), reference.coef_, atol=10 * RTOL[dtype])
    assert model.n_iter_ == reference.n_iter_
    assert model.t_ == reference.t_


OPTIONS = [
    pytest.param({}, id="saga"),
    pytest.param(
        {"solver": "sgd", "momentum": 0.9, "nesterov": True, "max_iter": 15}, id="nesterov"
    ),
    pytest.param({"solver": "sgd", "average": 40, "max_iter": 15}, id="average"),
    pytest.param({"early_stopping": True, "n_iter_no_change": 3}, id="early_stopping"),
    pytest.param({"class_weight": "balanced"}, id="class_weight"),
    pytest.param(
        {"fit_intercept": False, "solver": "sgd", "learning_rate": "constant", "eta0": 0.05},
        id="no_intercept",
    ),
    pytest.param(
        {"solver": "sgd", "learning_rate": "invscaling", "eta0": 0.1, "max_iter": 15},
        id="invscaling",
    ),
]


@pytest.mark.parametrize("name", NAMESPACES)
@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("options", OPTIONS)
def test_fit_equals_the_numpy_fit(name, n_classes, options):
    X, y, w = _data(n_classes)
    # Where the step oscillates for hundreds of epochs (SAGA's large step on some
    # weighted problems) rounding grows until the stopping rule decides otherwise:
    # these trajectories are well-conditioned.
    params = {"random_state": 0, "alpha": 1e-3, "batch_size": 32, **options}
    reference = SoftmaxRegressor(**params).fit(X, y, sample_weight=w)
    X_xp = _xp(name, X)
    model = SoftmaxRegressor(**params).fit(X_xp, _xp(name, y), sample_weight=_xp(name, w))
    _assert_same_model(model, reference, X, X_xp)
    # Epoch by epoch the same to rounding; over hundreds of epochs of a step that
    # oscillates (binary SAGA here) the rounding grows to ~1e-5 of the loss.
    np.testing.assert_allclose(model.loss_curve_[:20], reference.loss_curve_[:20], rtol=1e-9)
    assert len(model.loss_curve_) == len(reference.loss_curve_)
    if options.get("early_stopping"):
        np.testing.assert_allclose(model.validation_scores_, reference.validation_scores_)


@pytest.mark.parametrize("name", NAMESPACES)
def test_float32_fit_equals_the_numpy_fit(name):
    X, y, _ = _data(dtype=np.float32)
    reference = SoftmaxRegressor(random_state=0).fit(X, y)
    xp = NAMESPACES[name]
    X_xp = _xp(name, X, xp.float32)
    model = SoftmaxRegressor(random_state=0).fit(X_xp, _xp(name, y))
    assert model.coef_.dtype == xp.float32
    _assert_same_model(model, reference, X, X_xp, np.float32)


@pytest.mark.parametrize("name", NAMESPACES)
def test_fitted_arrays_and_outputs_follow_X(name):
    X, y, _ = _data()
    X_xp = _xp(name, X)
    model = SoftmaxRegressor(random_state=0, solver="sgd", momentum=0.5, average=True)
    model.fit(X_xp, _xp(name, y))
    arrays = [model.coef_, model.intercept_, model._raw_coef, model._feature_offset]
    arrays += model._optimizer.velocities + model._optimizer.averages
    for array in arrays:
        assert _namespace_name(array) == _namespace_name(X_xp)
    assert isinstance(model._optimizer, NamespaceOptimizer)
    for method in ("predict", "predict_proba", "predict_log_proba", "decision_function"):
        assert _namespace_name(getattr(model, method)(X_xp)) == _namespace_name(X_xp)
    # the labels themselves stay a numpy array: they may be strings
    assert isinstance(model.classes_, np.ndarray)
    assert isinstance(model.score(X_xp, _xp(name, y)), float)


def test_string_labels_predict_numpy_labels():
    X, y, _ = _data()
    labels = np.array(["ant", "bee", "cat"])[y]
    reference = SoftmaxRegressor(random_state=0).fit(X, labels)
    model = SoftmaxRegressor(random_state=0).fit(torch.asarray(X), labels)
    np.testing.assert_array_equal(model.predict(torch.asarray(X)), reference.predict(X))


@pytest.mark.parametrize("name", NAMESPACES)
def test_partial_fit_continues_exactly(name):
    X, y, w = _data()
    reference, model = SoftmaxRegressor(random_state=0), SoftmaxRegressor(random_state=0)
    for part in np.array_split(np.arange(len(y)), 4):
        reference.partial_fit(X[part], y[part], classes=[0, 1, 2], sample_weight=w[part])
        model.partial_fit(
            _xp(name, X[part]), _xp(name, y[part]), classes=[0, 1, 2], sample_weight=w[part]
        )
    _assert_same_model(model, reference, X, _xp(name, X))
    np.testing.assert_allclose(model.loss_curve_, reference.loss_curve_, rtol=1e-9)


@pytest.mark.parametrize("name", NAMESPACES)
def test_warm_start_and_partial_fit_after_fit(name):
    X, y, _ = _data()
    params = dict(random_state=0, warm_start=True, max_iter=5, solver="sgd", momentum=0.5)
    reference, model = SoftmaxRegressor(**params), SoftmaxRegressor(**params)
    X_xp, y_xp = _xp(name, X), _xp(name, y)
    for _ in range(2):
        reference.fit(X, y)
        model.fit(X_xp, y_xp)
    reference.partial_fit(X, y)
    model.partial_fit(X_xp, y_xp)
    _assert_same_model(model, reference, X, X_xp)


def test_training_goes_on_in_the_namespace_of_the_new_X():
    """A warm start or partial_fit moves the fitted state to the new X's namespace."""
    X, y, _ = _data()
    params = dict(random_state=0, warm_start=True, max_iter=4, solver="sgd", average=True)
    reference, model = SoftmaxRegressor(**params), SoftmaxRegressor(**params)
    reference.fit(X, y)
    model.fit(torch.asarray(X), torch.asarray(y))
    reference.partial_fit(X, y)
    model.partial_fit(X, y)  # numpy now: the state comes back to numpy
    assert isinstance(model.coef_, np.ndarray) and type(model._optimizer) is SGDOptimizer
    reference.fit(X, y)
    model.fit(array_api_strict.asarray(X), array_api_strict.asarray(y))
    _assert_same_model(model, reference, X, array_api_strict.asarray(X))


def test_a_numpy_model_predicts_on_torch_once_moved():
    X, y, _ = _data()
    reference = SoftmaxRegressor(random_state=0, solver="sgd", momentum=0.5).fit(X, y)
    X_torch = torch.asarray(X)
    with pytest.raises(ValueError, match="move_estimator_to"):
        reference.predict(X_torch)
    xp, _, device = get_namespace_and_device(X_torch)  # as the error message says
    moved = move_estimator_to(reference, xp, device)
    np.testing.assert_allclose(_host(moved.predict_proba(X_torch)), reference.predict_proba(X))
    # the optimiser's state moved too: training goes on as on numpy
    moved.partial_fit(X_torch, torch.asarray(y))
    reference.partial_fit(X, y)
    np.testing.assert_allclose(_host(moved.coef_), reference.coef_, atol=1e-10)
    back = move_estimator_to(moved, get_namespace_and_device(X)[0], "cpu")
    assert isinstance(back.coef_, np.ndarray) and type(back._optimizer) is SGDOptimizer
    np.testing.assert_allclose(back.predict_proba(X), reference.predict_proba(X))


def test_a_torch_model_asked_for_numpy_predictions_says_what_to_do():
    X, y, _ = _data()
    model = SoftmaxRegressor(random_state=0).fit(torch.asarray(X), torch.asarray(y))
    with pytest.raises(ValueError, match="same namespace"):
        model.predict(X)
    with sklearn.config_context(array_api_dispatch=False):
        with pytest.raises(ValueError, match=r"fitted on torch.*move_estimator_to"):
            model.predict_proba(X)


def _snapshot(model):
    return {
        key: _host(value).copy() if hasattr(value, "shape") else value
        for key, value in vars(model).items()
        if key not in ("_optimizer", "_rng", "_curvature")
    }


def _assert_unchanged(model, before):
    after = _snapshot(model)
    assert after.keys() == before.keys()
    for key, value in before.items():
        if isinstance(value, np.ndarray):
            np.testing.assert_array_equal(after[key], value, err_msg=key)
        else:
            assert after[key] == value or (value != value), key


@pytest.mark.parametrize("name", NAMESPACES)
def test_failed_calls_leave_the_model_as_it_was(name):
    X, y, _ = _data()
    X_xp, y_xp = _xp(name, X), _xp(name, y)
    model = SoftmaxRegressor(random_state=0, max_iter=5).fit(X_xp, y_xp)
    model.set_params(learning_rate="constant", eta0=1e9, solver="sgd", warm_start=True)
    before = _snapshot(model)
    bad = X.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        model.partial_fit(_xp(name, bad), y_xp)
    with pytest.raises(ValueError, match="labels"):
        model.partial_fit(X_xp, _xp(name, y + 5))
    # a step far too large diverges: the same error as on numpy, nothing changed
    with pytest.raises(ValueError, match="diverged"):
        model.fit(X_xp * 1e3, y_xp)
    with pytest.raises(ValueError, match="diverged"):
        SoftmaxRegressor(**model.get_params()).fit(X * 1e3, y)
    _assert_unchanged(model, before)


@pytest.mark.parametrize("name", NAMESPACES)
def test_adaptive_step_recovers_from_a_blow_up_as_on_numpy(name):
    X, y, _ = _data()
    params = dict(random_state=0, eta0=50.0, solver="sgd", max_iter=30, alpha=1e-3)
    reference = SoftmaxRegressor(**params).fit(X * 10, y)
    X_xp = _xp(name, X * 10)
    model = SoftmaxRegressor(**params).fit(X_xp, _xp(name, y))
    assert model._optimizer.eta < 50.0  # it blew up and backed off
    assert model._optimizer.eta == reference._optimizer.eta
    _assert_same_model(model, reference, X * 10, X_xp)


def test_coef_init_is_checked_and_moved():
    X, y, _ = _data()
    coef, intercept = np.full((3, 6), 0.1), np.array([0.5, 0.0, -0.5])
    reference = SoftmaxRegressor(random_state=0, max_iter=3)
    reference.fit(X, y, coef_init=coef, intercept_init=intercept)
    model = SoftmaxRegressor(random_state=0, max_iter=3)
    model.fit(
        torch.asarray(X), torch.asarray(y), coef_init=torch.asarray(coef), intercept_init=intercept
    )
    _assert_same_model(model, reference, X, torch.asarray(X))
    with pytest.raises(ValueError, match="coef_init has shape"):
        model.fit(torch.asarray(X), torch.asarray(y), coef_init=np.zeros((2, 6)))
    with pytest.raises(ValueError, match="coef_init and intercept_init put logits"):
        model.fit(torch.asarray(X), torch.asarray(y), coef_init=np.full((3, 6), 1e300))


def test_sparse_tensors_are_refused_by_name():
    X, y, _ = _data()
    with pytest.raises(TypeError, match="sparse.*dense"):
        SoftmaxRegressor().fit(torch.asarray(X).to_sparse(), torch.asarray(y))


def test_a_torch_model_pickles():
    X, y, _ = _data()
    model = SoftmaxRegressor(random_state=0, solver="sgd", momentum=0.5, max_iter=3)
    model.fit(torch.asarray(X), torch.asarray(y))
    loaded = pickle.loads(pickle.dumps(model))
    assert isinstance(loaded._optimizer, NamespaceOptimizer)
    torch.testing.assert_close(
        loaded.predict_proba(torch.asarray(X)), model.predict_proba(torch.asarray(X))
    )
    loaded.partial_fit(torch.asarray(X), torch.asarray(y))
    model.partial_fit(torch.asarray(X), torch.asarray(y))
    torch.testing.assert_close(loaded.coef_, model.coef_, rtol=0, atol=0)


# ---------------------------------------------------------------- the engine itself


def _copied(xp, array):
    return array.copy() if xp is None else xp.asarray(array, copy=True)


@pytest.mark.parametrize("n_params", [1, 4])
@pytest.mark.parametrize("saga", [False, True])
def test_one_epoch_equals_the_numpy_engine(n_params, saga):
    """The reference-engine oracle, below the estimator: the same epoch, batch by
    batch, with centring, sample weights, a ragged last batch, momentum and SAGA."""
    rng = np.random.RandomState(0)
    n, d, batch = 50, 5, 8
    X = rng.normal(size=(n, d))
    y = rng.randint(0, max(2, n_params), n)
    weights = rng.uniform(0.5, 1.5, n)
    order = rng.permutation(n)
    offset = X.mean(axis=0)
    results = []
    for engine_class, xp in [(EpochEngine, None), (NamespaceEngine, array_api_strict)]:
        move = partial(_copied, xp)
        coef, intercept = move(rng_coef := np.full((n_params, d), 0.1)), move(np.zeros(n_params))
        X_e = move(X)
        optimizer_class = SGDOptimizer if xp is None else NamespaceOptimizer
        options = dict(learning_rate="constant", eta0=0.3, power_t=0.5, alpha=0.01)
        optimizer = optimizer_class([coef, intercept], momentum=0.5, **options)
        memory_class = SAGAMemory if xp is None else NamespaceSAGAMemory
        memory = memory_class(n, n, coef, intercept, batch) if saga else None
        engine = engine_class(X_e, n_params, batch)
        for _ in range(2):
            loss, seen = engine.run_epoch(
                X_e, y, weights, order, coef, intercept, optimizer,
                alpha=0.01, fit_intercept=True, offset=move(offset), saga=memory,
            )  # fmt: skip
        results.append((loss, seen, _host(coef), _host(intercept)))
        assert rng_coef[0, 0] == 0.1  # the template was copied, not trained
    (loss_np, seen_np, coef_np, b_np), (loss_xp, seen_xp, coef_xp, b_xp) = results
    assert seen_np == seen_xp == n
    np.testing.assert_allclose(loss_xp, loss_np, rtol=1e-12)
    np.testing.assert_allclose(coef_xp, coef_np, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(b_xp, b_np, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("penalty", ["l1", "elasticnet"])
def test_an_l1_part_under_dispatch_is_refused_clearly_and_changes_nothing(penalty):
    """The namespace engine applies the L2 penalty only: an L1 part is refused with a
    message naming penalty and what to do, and a fitted model stays as it was."""
    X, y, _ = _data()
    X_torch = _xp("torch", X)
    model = SoftmaxRegressor(max_iter=3, tol=None, random_state=0).fit(X_torch, y)
    coef = _host(model.coef_).copy()
    model.set_params(penalty=penalty)
    for call in (model.fit, model.partial_fit):
        with pytest.raises(ValueError, match=r"penalty=.*L1 part.*numpy arrays"):
            call(X_torch, y)
    np.testing.assert_array_equal(_host(model.coef_), coef)
    # The same penalty on numpy arrays trains.
    SoftmaxRegressor(penalty=penalty, max_iter=3, tol=None, random_state=0).fit(X, y)
