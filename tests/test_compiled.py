"""The compiled epoch (numba) computes what the numpy engine computes.

Each comparison runs the same epoch, fit or failure twice on the same data and
seed: once with the compiled path forced (``COMPILED_MIN_SIZE = 0``) and once
with the numpy path forced (``SKSOFTMAX_NUMBA=0``), and checks which path each
run took, so that a comparison cannot pass by running numpy twice. Plus: which
inputs select the compiled path, Ctrl-C polling per chunk, no copy of X, and
float32 kept float32.
"""

import copy
import importlib.util
import pickle
from dataclasses import dataclass

import numpy as np
import pytest
import scipy.sparse as sp
from _data import standardised
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.utils import check_array
from test_engine import (
    fit_peak_memory,
    make_problem,
    memory_problem,
    reference_epoch,
    saga_table_nbytes,
)

import sksoftmax._engine as engine_module
from sksoftmax import SoftmaxRegressor
from sksoftmax._engine import DivergenceError, EpochEngine
from sksoftmax._loss import objective
from sksoftmax._optim import SGDOptimizer

pytest.importorskip("numba")

pytestmark = pytest.mark.usefixtures("blas_single_thread")

PATHS = ("numpy", "compiled")
RTOL = {np.float64: 1e-10, np.float32: 1e-4}


@pytest.fixture
def force_path(monkeypatch):
    """``use(path)`` makes the EpochEngines built from now on take ``path``.

    Returns the list to which every ``run_epoch`` call appends its engine's
    ``compiled`` flag (emptied at each ``use``).
    """
    taken = []
    original = EpochEngine.run_epoch

    def run_epoch(self, *args, **kwargs):
        taken.append(self.compiled)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(EpochEngine, "run_epoch", run_epoch)

    def use(path):
        assert path in PATHS
        taken.clear()
        if path == "compiled":
            monkeypatch.delenv("SKSOFTMAX_NUMBA", raising=False)
            monkeypatch.setattr(engine_module, "COMPILED_MIN_SIZE", 0)
        else:
            monkeypatch.setenv("SKSOFTMAX_NUMBA", "0")
        return taken

    return use


def _assert_took(taken, path, n_epochs=None):
    assert taken, "the engine never ran"
    assert taken == [path == "compiled"] * len(taken), f"not all epochs took the {path} path"
    if n_epochs is not None:
        assert len(taken) == n_epochs


def _assert_close(actual, expected, rtol, name):
    """Relative to the array's own scale, so tiny entries of a large array do not fail."""
    expected = np.asarray(expected)
    atol = rtol * float(np.abs(expected).max(initial=0.0))
    assert_allclose(actual, expected, rtol=rtol, atol=atol, err_msg=name)


# ------------------------------------------------------------ one epoch

OPTIMISERS = {
    "plain": {},
    "momentum": {"momentum": 0.9},
    "nesterov": {"momentum": 0.9, "nesterov": True},
    "average": {"average": True},
    # t starts at 0: batches 1-3 copy the weights into the average, later ones fold in.
    "average-from-100": {"average": 100},
}
SCHEDULES = ("constant", "optimal", "invscaling", "adaptive")
# L2 strength of the gradient, and the different alpha of the "optimal" schedule:
# a kernel that mixed the two up would train a different model.
ALPHA = 0.01
SCHEDULE_ALPHA = 0.2
N_SAMPLES, N_FEATURES = 203, 13  # 203: ragged last batches; 13: odd feature loops


@dataclass(frozen=True)
class EpochCase:
    optimiser: str
    schedule: str
    n_classes: int
    weighted: bool
    order: str  # "none": storage order, "shuffled", "subset": 183 of the 203 rows shuffled
    fit_intercept: bool
    batch_size: int  # 30: not a whole number of the compiled kernels' blocks of rows
    chunk_rows: int | None  # COMPILED_CHUNK_ROWS, None for the default (one chunk here)

    @property
    def id(self):
        return "-".join(
            [
                self.optimiser,
                self.schedule,
                f"{self.n_classes}cls",
                "weighted" if self.weighted else "unweighted",
                f"order={self.order}",
                "intercept" if self.fit_intercept else "no-intercept",
                f"batch{self.batch_size}",
                f"chunk{self.chunk_rows}" if self.chunk_rows else "one-chunk",
            ]
        )


# Every optimiser meets every schedule once; the other settings are spread so
# that each value occurs with several optimisers and schedules.
_ = EpochCase
EPOCH_CASES = [
    _("plain", "constant", 2, False, "none", True, 32, None),
    _("plain", "optimal", 3, True, "shuffled", False, 32, 64),
    _("plain", "invscaling", 5, True, "subset", True, 30, None),
    _("plain", "adaptive", 4, False, "shuffled", True, 32, None),
    _("momentum", "constant", 4, True, "shuffled", True, 32, 64),
    _("momentum", "optimal", 2, False, "subset", True, 32, None),
    _("momentum", "invscaling", 3, False, "none", False, 32, None),
    _("momentum", "adaptive", 5, True, "shuffled", True, 30, None),
    _("nesterov", "constant", 3, True, "subset", True, 32, None),
    _("nesterov", "optimal", 5, False, "shuffled", True, 32, None),
    _("nesterov", "invscaling", 2, True, "shuffled", False, 30, 64),
    _("nesterov", "adaptive", 4, False, "none", True, 32, None),
    _("average", "constant", 5, False, "shuffled", False, 32, None),
    _("average", "optimal", 4, True, "none", True, 30, None),
    _("average", "invscaling", 3, True, "shuffled", True, 32, 64),
    _("average", "adaptive", 2, False, "subset", True, 32, None),
    _("average-from-100", "constant", 2, True, "shuffled", True, 32, None),
    _("average-from-100", "optimal", 4, False, "shuffled", False, 32, 64),
    _("average-from-100", "invscaling", 5, False, "subset", True, 32, None),
    _("average-from-100", "adaptive", 3, True, "none", True, 30, None),
]
del _


def test_epoch_cases_cover_every_setting():
    """The table above, edited later, still covers every value of every setting."""
    pairs = {(case.optimiser, case.schedule) for case in EPOCH_CASES}
    assert pairs == {(o, s) for o in OPTIMISERS for s in SCHEDULES}
    assert {c.n_classes for c in EPOCH_CASES} >= {2, 3, 4, 5}
    for attribute, values in [
        ("weighted", {False, True}),
        ("order", {"none", "shuffled", "subset"}),
        ("fit_intercept", {False, True}),
        ("batch_size", {30, 32}),
        ("chunk_rows", {None, 64}),
    ]:
        assert {getattr(c, attribute) for c in EPOCH_CASES} == values, attribute
    # The ragged last batch exists in every case.
    assert all(N_SAMPLES % c.batch_size and (N_SAMPLES - 20) % c.batch_size for c in EPOCH_CASES)


def _epoch_setup(case, dtype):
    """Data, initial weights and a mid-training optimiser for one epoch."""
    X, y = make_problem(N_SAMPLES, N_FEATURES, case.n_classes, dtype, sparse=False)
    rng = np.random.default_rng(1)
    weights = None
    if case.weighted:
        weights = rng.uniform(0.0, 3.0, size=N_SAMPLES)
        weights[::17] = 0.0
        weights = (weights / weights.mean()).astype(dtype)
    order = {
        "none": None,
        "shuffled": rng.permutation(N_SAMPLES),
        "subset": rng.permutation(N_SAMPLES)[: N_SAMPLES - 20],
    }[case.order]
    n_params = 1 if case.n_classes == 2 else case.n_classes

    def random(*shape, scale=0.1):
        return (scale * rng.standard_normal(shape)).astype(dtype)

    coef = random(n_params, N_FEATURES)
    # fit zeroes the intercept and its buffers when it is not fitted (see _train).
    intercept = random(n_params) if case.fit_intercept else np.zeros(n_params, dtype)
    options = OPTIMISERS[case.optimiser]
    momentum = options.get("momentum", 0.0)
    optimizer = SGDOptimizer(
        [coef, intercept],
        learning_rate=case.schedule,
        eta0=0.3 * (1.0 - momentum),
        power_t=0.4,
        alpha=SCHEDULE_ALPHA,
        **options,
    )
    if options.get("average") != 100:
        # Mid-training: the schedules are past t = 0, momentum and averages are warm.
        optimizer.t = 45
        if momentum:
            optimizer.velocities = [random(n_params, N_FEATURES), random(n_params)]
        if optimizer.averaging:
            optimizer.averages = [coef + random(n_params, N_FEATURES), intercept + random(n_params)]
            optimizer.n_averaged = 3
        if not case.fit_intercept:
            for buffers in (optimizer.velocities, optimizer.averages):
                if buffers is not None:
                    buffers[1][...] = 0.0
    if case.schedule == "adaptive":
        assert optimizer.stalled()  # the current step is now eta0 / 5, not eta0
    return X, y, weights, order, coef, intercept, optimizer


def _run_epoch(path, force_path, case, X, y, weights, order, coef, intercept, optimizer):
    force_path(path)
    coef, intercept, optimizer = coef.copy(), intercept.copy(), copy.deepcopy(optimizer)
    engine = EpochEngine(X, coef.shape[0], case.batch_size)
    assert engine.compiled == (path == "compiled")
    stops = []

    def stop_requested():
        stops.append(1)
        return False

    loss_sum, n_seen = engine.run_epoch(
        X,
        y,
        weights,
        order,
        coef,
        intercept,
        optimizer,
        alpha=ALPHA,
        fit_intercept=case.fit_intercept,
        stop_requested=stop_requested,
    )
    return dict(
        coef=coef,
        intercept=intercept,
        loss_sum=loss_sum,
        n_seen=n_seen,
        optimizer=optimizer,
        stop_calls=len(stops),
    )


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("case", EPOCH_CASES, ids=[case.id for case in EPOCH_CASES])
def test_compiled_epoch_matches_numpy_engine(force_path, monkeypatch, case, dtype):
    if case.chunk_rows is not None:
        monkeypatch.setattr(engine_module, "COMPILED_CHUNK_ROWS", case.chunk_rows)
    setup = _epoch_setup(case, dtype)
    X, y, weights, order = setup[:4]
    inputs = [None if a is None else a.copy() for a in (X, y, weights, order)]
    expected = _run_epoch("numpy", force_path, case, *setup)
    actual = _run_epoch("compiled", force_path, case, *setup)
    for before, after in zip(inputs, (X, y, weights, order), strict=True):
        if before is not None:
            assert_array_equal(after, before)  # the compiled path wrote into no input

    rtol = RTOL[dtype]
    n_rows = N_SAMPLES if order is None else len(order)
    opt, expected_opt = actual["optimizer"], expected["optimizer"]
    assert actual["n_seen"] == expected["n_seen"] == n_rows
    assert opt.t == expected_opt.t == setup[-1].t + n_rows
    assert opt.n_averaged == expected_opt.n_averaged
    if case.optimiser == "average-from-100":
        # Both phases happened in this epoch: copies up to t = 100, then averaging.
        assert 0 < expected_opt.n_averaged < -(-n_rows // case.batch_size)
    assert opt.eta == expected_opt.eta
    assert np.isfinite(expected["loss_sum"])
    _assert_close(actual["loss_sum"], expected["loss_sum"], rtol, "loss_sum")
    _assert_close(actual["coef"], expected["coef"], rtol, "coef")
    _assert_close(actual["intercept"], expected["intercept"], rtol, "intercept")
    if not case.fit_intercept:
        assert not actual["intercept"].any()
    arrays = [actual["coef"], actual["intercept"]]
    for name in ("velocities", "averages"):
        got, want = getattr(opt, name), getattr(expected_opt, name)
        assert (got is None) == (want is None), name
        if want is not None:
            arrays += got
            for index, (a, b) in enumerate(zip(got, want, strict=True)):
                _assert_close(a, b, rtol, f"{name}[{index}]")
    assert all(a.dtype == dtype for a in arrays)
    # Ctrl-C is polled once per chunk of whole batches instead of after every batch.
    chunk = case.batch_size * max(1, engine_module.COMPILED_CHUNK_ROWS // case.batch_size)
    assert expected["stop_calls"] == -(-n_rows // case.batch_size)
    assert actual["stop_calls"] == -(-n_rows // chunk)


@pytest.mark.parametrize("n_classes", [2, 4])
def test_compiled_epoch_matches_reference_kernels(force_path, n_classes):
    """An oracle independent of the numpy engine: plain SGD on sksoftmax._loss.gradient."""
    force_path("compiled")
    X, y = make_problem(N_SAMPLES, N_FEATURES, n_classes, np.float64, sparse=False)
    rng = np.random.default_rng(2)
    weights = rng.uniform(0.0, 3.0, size=N_SAMPLES)
    order = rng.permutation(N_SAMPLES)
    n_params = 1 if n_classes == 2 else n_classes
    coef0 = 0.1 * rng.standard_normal((n_params, N_FEATURES))
    intercept0 = 0.1 * rng.standard_normal(n_params)
    eta, batch_size = 0.3, 32
    coef, intercept = coef0.copy(), intercept0.copy()
    optimizer = SGDOptimizer(
        [coef, intercept], learning_rate="constant", eta0=eta, power_t=0.5, alpha=ALPHA
    )
    engine = EpochEngine(X, n_params, batch_size)
    assert engine.compiled
    engine.run_epoch(
        X, y, weights, order, coef, intercept, optimizer, alpha=ALPHA, fit_intercept=True
    )
    expected_coef, expected_intercept = reference_epoch(
        X, y, weights, order, coef0, intercept0, eta=eta, alpha=ALPHA, batch_size=batch_size
    )
    assert_allclose(coef, expected_coef, rtol=1e-10, atol=1e-12)
    assert_allclose(intercept, expected_intercept, rtol=1e-10, atol=1e-12)


# ------------------------------------------------------------ whole fits


def _fitted_state(model):
    return dict(
        coef=model.coef_,
        intercept=model.intercept_,
        raw_coef=model._raw_coef,
        raw_intercept=model._raw_intercept,
        loss_curve=np.array(model.loss_curve_),
        best_loss=model.best_loss_,
        validation_scores=np.array(model.validation_scores_ or []),
    )


FIT_CASES = {
    "digits-early-stopping": (
        "digits",
        np.float64,
        dict(
            early_stopping=True,
            scoring="accuracy",
            n_iter_no_change=2,
            learning_rate="constant",
            max_iter=30,
        ),
    ),
    "digits-balanced-early-stopping-nesterov": (
        "digits",
        np.float64,
        dict(
            class_weight="balanced",
            early_stopping=True,
            n_iter_no_change=2,
            momentum=0.9,
            nesterov=True,
            tol=1e-2,
            max_iter=30,
        ),
    ),
    "digits-float32-balanced-average": (
        "digits",
        np.float32,
        dict(class_weight="balanced", average=True, max_iter=6, tol=None, batch_size=100),
    ),
    "breast-cancer-binary-balanced-early-stopping": (
        "breast_cancer",
        np.float64,
        dict(
            class_weight="balanced",
            early_stopping=True,
            n_iter_no_change=2,
            learning_rate="invscaling",
            eta0=0.5,
            average=300,
            max_iter=30,
            tol=1e-3,  # early stopping's tol is absolute on the validation score
        ),
    ),
}


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("name", list(FIT_CASES))
def test_compiled_fit_matches_numpy_fit(force_path, name):
    data, dtype, params = FIT_CASES[name]
    X, y = standardised(data)
    X = X.astype(dtype, copy=False)
    models = {}
    for path in PATHS:
        taken = force_path(path)
        models[path] = SoftmaxRegressor(random_state=0, **params).fit(X, y)
        _assert_took(taken, path, n_epochs=models[path].n_iter_)
    compiled, expected = models["compiled"], models["numpy"]
    if params.get("early_stopping"):
        assert expected.n_iter_ < params["max_iter"]  # stopped early
    assert compiled.n_iter_ == expected.n_iter_
    assert compiled.t_ == expected.t_
    assert compiled.coef_.dtype == expected.coef_.dtype == dtype
    rtol = RTOL[dtype]
    actual_state, expected_state = _fitted_state(compiled), _fitted_state(expected)
    for key, value in expected_state.items():
        _assert_close(actual_state[key], value, rtol, key)
    assert_array_equal(compiled.predict(X), expected.predict(X))


def test_compiled_partial_fit_and_warm_start_match_numpy(force_path):
    """The optimiser state carried between calls (t, momentum, averages) goes on alike."""
    X, y = standardised("digits")
    chunks = np.array_split(np.arange(len(y)), 3)
    models = {}
    for path in PATHS:
        taken = force_path(path)
        model = SoftmaxRegressor(
            random_state=0, momentum=0.5, average=400, max_iter=2, tol=None, warm_start=True
        )
        for rows in chunks:
            model.partial_fit(X[rows], y[rows], classes=np.unique(y))
        model.fit(X, y)
        _assert_took(taken, path, n_epochs=len(chunks) + 2)
        models[path] = model
    compiled, expected = models["compiled"], models["numpy"]
    assert compiled.t_ == expected.t_ == 3 * len(y)
    assert compiled._optimizer.n_averaged == expected._optimizer.n_averaged > 0
    for key, value in _fitted_state(expected).items():
        _assert_close(_fitted_state(compiled)[key], value, 1e-10, key)
    for index in range(2):
        _assert_close(
            compiled._optimizer.velocities[index],
            expected._optimizer.velocities[index],
            1e-10,
            f"velocities[{index}]",
        )


# ------------------------------------------------------------ failures


@pytest.mark.parametrize("warm_start", [False, True])
# invscaling: eta = 1e9 / sqrt(t) still makes eta * alpha > 2 for billions of samples.
@pytest.mark.parametrize("learning_rate, eta0", [("constant", 1e6), ("invscaling", 1e9)])
def test_divergence_raises_same_error_and_keeps_fitted_model(
    force_path, learning_rate, eta0, warm_start
):
    """A huge step fails alike on both paths (the message names the epoch and the
    step at the failing sample count) and leaves the fitted model as it was."""
    X, y = standardised("digits")
    messages = {}
    for path in PATHS:
        taken = force_path(path)
        model = SoftmaxRegressor(
            random_state=0, max_iter=2, tol=None, momentum=0.5, average=True, warm_start=warm_start
        ).fit(X, y)
        model.set_params(learning_rate=learning_rate, eta0=eta0)
        before = pickle.dumps(model.__dict__)
        predictions = model.predict_proba(X)
        taken.clear()
        with pytest.raises(ValueError, match=r"Training diverged in epoch \d+") as error:
            model.fit(X, y)
        _assert_took(taken, path)
        assert pickle.dumps(model.__dict__) == before
        assert_array_equal(model.predict_proba(X), predictions)
        messages[path] = str(error.value)
    assert messages["compiled"] == messages["numpy"]
    # Counted as n_iter_ counts: from the start of this fit, warm or not.
    assert "in epoch 1:" in messages["numpy"]


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf], ids=["nan", "inf", "-inf"])
def test_non_finite_X_raises_same_error(force_path, bad, dtype):
    X, y = standardised("iris")
    X = X.astype(dtype)
    X[7, 2] = bad
    messages = {}
    for path in PATHS:
        taken = force_path(path)
        fitted = SoftmaxRegressor(random_state=0, max_iter=2, tol=None).fit(X[8:], y[8:])
        _assert_took(taken, path)
        taken.clear()
        before = pickle.dumps(fitted.__dict__)
        with pytest.raises(ValueError, match="NaN|infinity") as error:
            fitted.fit(X, y)
        assert taken == []  # rejected by validation, before any epoch
        assert pickle.dumps(fitted.__dict__) == before
        messages[path] = str(error.value)
    assert messages["compiled"] == messages["numpy"]


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
@pytest.mark.parametrize(
    "failure, dtype",
    [
        (failure, dtype)
        for failure in ("nan-row", "inf-row", "huge-logit", "overflowing-loss")
        for dtype in (np.float64, np.float32)
        # float32 weights cannot make the float64 loss sum overflow
        if not (failure == "overflowing-loss" and dtype == np.float32)
    ],
    ids=lambda value: getattr(value, "__name__", value),
)
def test_engine_failure_mid_epoch_is_the_same(force_path, monkeypatch, failure, dtype):
    """Past validation, a bad batch stops both engines at the same sample count with
    the same DivergenceError, after applying the same earlier batches."""
    monkeypatch.setattr(engine_module, "COMPILED_CHUNK_ROWS", 64)
    X, y = make_problem(N_SAMPLES, N_FEATURES, 4, dtype, sparse=False)
    weights = None
    order = np.random.default_rng(3).permutation(N_SAMPLES)
    bad_row = order[120]  # in the 4th batch of 32, the 2nd chunk of 64 rows
    if failure == "nan-row":
        X[bad_row, 5] = np.nan
    elif failure == "inf-row":
        X[bad_row, 5] = np.inf
    elif failure == "huge-logit":
        X[bad_row, 5] = 1e17 if dtype == np.float64 else 1e30
    else:
        weights = np.ones(N_SAMPLES)
        weights[order[96:128]] = 1e308
    coef0 = 0.1 * np.random.default_rng(4).standard_normal((4, N_FEATURES)).astype(dtype)
    intercept0 = np.zeros(4, dtype)
    results = {}
    for path in PATHS:
        force_path(path)
        coef, intercept = coef0.copy(), intercept0.copy()
        optimizer = SGDOptimizer(
            [coef, intercept],
            learning_rate="constant",
            eta0=0.1,
            power_t=0.5,
            alpha=ALPHA,
            momentum=0.5,
            average=True,
        )
        engine = EpochEngine(X, 4, 32)
        assert engine.compiled == (path == "compiled")
        with pytest.raises(DivergenceError) as error:
            engine.run_epoch(
                X, y, weights, order, coef, intercept, optimizer, alpha=ALPHA, fit_intercept=True
            )
        results[path] = (str(error.value), coef, intercept, optimizer)
    message, coef, intercept, optimizer = results["compiled"]
    expected_message, expected_coef, expected_intercept, expected_optimizer = results["numpy"]
    assert message == expected_message
    assert expected_message.endswith("after 96 samples")
    assert optimizer.t == expected_optimizer.t == 96
    assert optimizer.n_averaged == expected_optimizer.n_averaged == 3
    rtol = RTOL[dtype]
    _assert_close(coef, expected_coef, rtol, "coef")
    _assert_close(intercept, expected_intercept, rtol, "intercept")
    for name in ("velocities", "averages"):
        for a, b in zip(getattr(optimizer, name), getattr(expected_optimizer, name), strict=True):
            _assert_close(a, b, rtol, name)


# ------------------------------------------------------------ Ctrl-C polling


@pytest.mark.parametrize(
    "chunk_rows, rows_per_chunk",
    [(64, 64), (100, 96), (50, 32), (10, 32)],  # rounded down to whole batches, at least one
)
def test_stop_requested_after_first_chunk(force_path, monkeypatch, chunk_rows, rows_per_chunk):
    monkeypatch.setattr(engine_module, "COMPILED_CHUNK_ROWS", chunk_rows)
    X, y = make_problem(N_SAMPLES, N_FEATURES, 3, np.float64, sparse=False)
    order = np.random.default_rng(5).permutation(N_SAMPLES)
    coef0 = 0.1 * np.random.default_rng(6).standard_normal((3, N_FEATURES))
    results = {}
    for path in PATHS:
        force_path(path)
        coef, intercept = coef0.copy(), np.zeros(3)
        optimizer = SGDOptimizer(
            [coef, intercept], learning_rate="constant", eta0=0.3, power_t=0.5, alpha=ALPHA
        )
        engine = EpochEngine(X, 3, 32)
        calls = []

        def stop_requested(engine=engine, calls=calls):
            # numpy polls after each batch: stop it after as many rows as one chunk.
            calls.append(1)
            return engine.compiled or len(calls) * 32 >= rows_per_chunk

        loss_sum, n_seen = engine.run_epoch(
            X,
            y,
            None,
            order,
            coef,
            intercept,
            optimizer,
            alpha=ALPHA,
            fit_intercept=True,
            stop_requested=stop_requested,
        )
        results[path] = (loss_sum, n_seen, optimizer.t, len(calls), coef, intercept)
    loss_sum, n_seen, t, n_calls, coef, intercept = results["compiled"]
    assert (n_seen, t, n_calls) == (rows_per_chunk, rows_per_chunk, 1)
    expected = results["numpy"]
    assert expected[1] == expected[2] == rows_per_chunk
    assert_allclose(loss_sum, expected[0], rtol=1e-10)
    assert_allclose(coef, expected[4], rtol=1e-10, atol=1e-12)
    assert_allclose(intercept, expected[5], rtol=1e-10, atol=1e-12)


# ------------------------------------------------------------ selection


def test_compiled_path_selection(monkeypatch):
    monkeypatch.delenv("SKSOFTMAX_NUMBA", raising=False)
    monkeypatch.setattr(engine_module, "COMPILED_MIN_SIZE", 1000)
    dense = np.zeros((100, 10))  # exactly COMPILED_MIN_SIZE entries

    def compiled(X):
        return EpochEngine(X, 3, 32).compiled

    assert compiled(dense)
    assert compiled(dense.astype(np.float32))
    assert not compiled(dense[:99])  # one row short of COMPILED_MIN_SIZE
    assert not compiled(sp.csr_matrix(dense))
    assert not compiled(np.asfortranarray(dense))
    assert not compiled(np.zeros((200, 10))[::2])  # C-ordered but strided rows
    assert not compiled(dense.astype(np.float16))
    assert not compiled(dense.astype(np.int64))
    monkeypatch.setenv("SKSOFTMAX_NUMBA", "0")
    assert not compiled(dense)
    monkeypatch.setenv("SKSOFTMAX_NUMBA", "1")
    assert compiled(dense)

    find_spec = importlib.util.find_spec

    def numba_missing(name, *args, **kwargs):
        return None if name == "numba" else find_spec(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", numba_missing)
    assert not compiled(dense)


@pytest.mark.parametrize("n_classes", [2, 4])
def test_logits_overflowing_downwards_only_are_caught(force_path, n_classes):
    """Every logit of one row far below -MAX_LOGIT (none above): both engines stop."""
    X, y = make_problem(N_SAMPLES, N_FEATURES, n_classes, np.float64, sparse=False)
    n_params = 1 if n_classes == 2 else n_classes
    coef0 = 0.1 * np.abs(np.random.default_rng(9).standard_normal((n_params, N_FEATURES)))
    X[40, :] = -1e17  # row 40: the second batch of 32
    messages = []
    for path in PATHS:
        force_path(path)
        coef, intercept = coef0.copy(), np.zeros(n_params)
        optimizer = SGDOptimizer(
            [coef, intercept], learning_rate="constant", eta0=1e-3, power_t=0.5, alpha=0.0
        )
        with pytest.raises(DivergenceError) as error:
            EpochEngine(X, n_params, 32).run_epoch(
                X, y, None, None, coef, intercept, optimizer, alpha=0.0, fit_intercept=True
            )
        messages.append(str(error.value))
    assert messages[0] == messages[1] == "logits past 1e+15 after 32 samples"


def test_compiled_path_left_to_blas_for_wide_batches(monkeypatch):
    """Past COMPILED_MAX_BATCH_LOGITS logits per batch, BLAS's products are faster."""
    monkeypatch.delenv("SKSOFTMAX_NUMBA", raising=False)
    monkeypatch.setattr(engine_module, "COMPILED_MIN_SIZE", 0)
    X = np.zeros((1000, 10))
    limit = engine_module.COMPILED_MAX_BATCH_LOGITS
    assert EpochEngine(X, 8, limit // 8).compiled
    assert not EpochEngine(X, 8, limit // 8 + 1).compiled
    assert not EpochEngine(X, 50, 128).compiled


@pytest.mark.parametrize("value", ["0", "false", "OFF", " no "])
def test_environment_switch_spellings(monkeypatch, value):
    monkeypatch.setattr(engine_module, "COMPILED_MIN_SIZE", 0)
    monkeypatch.setenv("SKSOFTMAX_NUMBA", value)
    assert not EpochEngine(np.zeros((100, 10)), 3, 32).compiled


def test_broken_numba_falls_back_to_numpy_with_one_warning(monkeypatch):
    """numba installed but failing to load (e.g. built for another numpy): numpy trains."""
    monkeypatch.delenv("SKSOFTMAX_NUMBA", raising=False)
    monkeypatch.setattr(engine_module, "COMPILED_MIN_SIZE", 0)
    monkeypatch.setattr(engine_module, "_kernels", None)
    monkeypatch.setattr(engine_module, "_kernels_failed", False)

    def import_module(name, package=None):
        raise ImportError("Numba needs NumPy 2.3 or less")

    monkeypatch.setattr(engine_module.importlib, "import_module", import_module)
    X, y = standardised("digits")
    with pytest.warns(RuntimeWarning, match="compiled engine is unavailable.*NumPy 2.3"):
        model = SoftmaxRegressor(max_iter=3, tol=None, random_state=0).fit(X, y)
    assert not engine_module.compiled_available()
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once, not at every fit
        again = SoftmaxRegressor(max_iter=3, tol=None, random_state=0).fit(X, y)
    monkeypatch.setenv("SKSOFTMAX_NUMBA", "0")
    reference = SoftmaxRegressor(max_iter=3, tol=None, random_state=0).fit(X, y)
    assert_array_equal(model.coef_, reference.coef_)
    assert_array_equal(again.coef_, reference.coef_)


def test_uncacheable_kernels_compile_in_memory(monkeypatch):
    """numba refuses cache=True when neither the package nor the home cache is
    writable; the kernels then compile for the process only."""
    from sksoftmax import _compiled

    real_njit = _compiled.njit
    seen = []

    def njit(**options):
        seen.append(options["cache"])
        if options["cache"]:
            raise RuntimeError("cannot cache function 'f': no locator available for file")
        return real_njit(**options)

    monkeypatch.setattr(_compiled, "njit", njit)

    def add_one(a):
        return a + 1.0

    assert _compiled._jit(add_one)(1.0) == 2.0
    assert seen == [True, False]


def test_only_reassociation_and_contraction_fast_math():
    """nnan/ninf would let the compiler drop the NaN and overflow checks."""
    from sksoftmax import _compiled

    assert _compiled.FASTMATH == {"reassoc", "contract"}
    for kernel in (_compiled.dense_epoch_chunk, _compiled._logits, _compiled._residual):
        assert set(kernel.targetoptions["fastmath"]) == {"reassoc", "contract"}


def test_keyboard_interrupt_as_a_chunk_returns_keeps_counters_with_weights(
    force_path, monkeypatch
):
    """Ctrl-C lands when the compiled call returns to Python: t and n_averaged must
    still count exactly the batches applied to the weights."""
    from sksoftmax import _compiled

    monkeypatch.setattr(engine_module, "COMPILED_CHUNK_ROWS", 64)
    real_chunk = _compiled.dense_epoch_chunk
    calls = []

    def chunk_then_interrupt(*args):
        result = real_chunk(*args)
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return result

    monkeypatch.setattr(_compiled, "dense_epoch_chunk", chunk_then_interrupt)
    X, y = make_problem(N_SAMPLES, N_FEATURES, 3, np.float64, sparse=False)
    order = np.random.default_rng(7).permutation(N_SAMPLES)
    results = {}
    for path in PATHS:
        force_path(path)
        coef, intercept = np.zeros((3, N_FEATURES)), np.zeros(3)
        optimizer = SGDOptimizer(
            [coef, intercept],
            learning_rate="constant",
            eta0=0.3,
            power_t=0.5,
            alpha=ALPHA,
            average=True,
        )
        engine = EpochEngine(X, 3, 32)
        if path == "compiled":
            with pytest.raises(KeyboardInterrupt):
                engine.run_epoch(
                    X, y, None, order, coef, intercept, optimizer, alpha=ALPHA, fit_intercept=True
                )
        else:  # the numpy engine stopped after the same 128 rows
            engine.run_epoch(
                X,
                y,
                None,
                order[:128],
                coef,
                intercept,
                optimizer,
                alpha=ALPHA,
                fit_intercept=True,
            )
        results[path] = (coef, optimizer)
    coef, optimizer = results["compiled"]
    expected_coef, expected_optimizer = results["numpy"]
    assert optimizer.t == expected_optimizer.t == 128
    assert optimizer.n_averaged == expected_optimizer.n_averaged == 4
    assert_allclose(coef, expected_coef, rtol=1e-10, atol=1e-12)
    assert_allclose(optimizer.averages[0], expected_optimizer.averages[0], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("variant", ["readonly", "int32-labels-and-order"])
def test_input_variants_train_the_same_model(force_path, variant):
    X, y = make_problem(N_SAMPLES, N_FEATURES, 3, np.float64, sparse=False)
    order = np.random.default_rng(8).permutation(N_SAMPLES)
    coefs = []
    for inputs in ("plain", variant):
        force_path("compiled")
        X_in, y_in, order_in = X.copy(), y, order
        if inputs == "readonly":
            X_in.setflags(write=False)
        elif inputs == "int32-labels-and-order":
            y_in, order_in = y.astype(np.int32), order.astype(np.int32)
        coef, intercept = np.zeros((3, N_FEATURES)), np.zeros(3)
        optimizer = SGDOptimizer(
            [coef, intercept], learning_rate="constant", eta0=0.3, power_t=0.5, alpha=ALPHA
        )
        EpochEngine(X_in, 3, 32).run_epoch(
            X_in, y_in, None, order_in, coef, intercept, optimizer, alpha=ALPHA, fit_intercept=True
        )
        coefs.append(coef)
    assert_array_equal(coefs[1], coefs[0])


def test_default_min_size(monkeypatch):
    """With the shipped threshold, 2**20 entries are compiled and one row fewer not."""
    monkeypatch.delenv("SKSOFTMAX_NUMBA", raising=False)
    n_features = 256
    n_rows = engine_module.COMPILED_MIN_SIZE // n_features
    assert n_rows * n_features == engine_module.COMPILED_MIN_SIZE == 2**20
    assert EpochEngine(np.zeros((n_rows, n_features), np.float32), 10, 128).compiled
    assert not EpochEngine(np.zeros((n_rows - 1, n_features), np.float32), 10, 128).compiled


def test_compiled_fit_copies_no_X(force_path):
    """Peak memory added by a compiled fit stays under 5% of X.nbytes."""
    X, y = memory_problem()
    taken = force_path("compiled")
    # Import numba and load the kernels for this dtype outside the measurement
    # (importing numba alone allocates ~26 MB of Python objects).
    SoftmaxRegressor(max_iter=1, tol=None, random_state=0).fit(X[:500], y[:500])
    taken.clear()
    for solver in ["sgd", "saga"]:
        model = SoftmaxRegressor(max_iter=2, tol=None, random_state=0, solver=solver)
        added = fit_peak_memory(model, X, y)
        _assert_took(taken, "compiled", n_epochs=2)
        taken.clear()
        assert added < 0.05 * X.nbytes + saga_table_nbytes(solver, X, y), (
            f"{solver}: fit added {added / X.nbytes:.1%} of X.nbytes"
        )


# ------------------------------------------------------------ dtype


@pytest.mark.parametrize("options", [{}, {"momentum": 0.9, "average": True}])
def test_float32_in_float32_out(force_path, options):
    X, y = standardised("digits")
    X = X.astype(np.float32)
    taken = force_path("compiled")
    model = SoftmaxRegressor(random_state=0, max_iter=3, tol=None, **options).fit(X, y)
    _assert_took(taken, "compiled", n_epochs=3)
    assert model.coef_.dtype == np.float32
    assert model.intercept_.dtype == np.float32
    assert model._raw_coef.dtype == model._raw_intercept.dtype == np.float32
    for buffers in (model._optimizer.velocities, model._optimizer.averages):
        assert buffers is None or all(b.dtype == np.float32 for b in buffers)
    assert model.decision_function(X).dtype == np.float32
    assert model.score(X, y) > 0.9


# ------------------------------------------------------------ sparse


def _sparse_epoch(X, y, weights, order, coef0, intercept0, *, schedule, eta0, alpha,
                  batch_size, fit_intercept):  # fmt: skip
    coef, intercept = coef0.copy(), intercept0.copy()
    optimizer = SGDOptimizer(
        [coef, intercept], learning_rate=schedule, eta0=eta0, power_t=0.4, alpha=SCHEDULE_ALPHA
    )
    engine = EpochEngine(X, coef.shape[0], batch_size)
    loss_sum, n_seen = engine.run_epoch(
        X, y, weights, order, coef, intercept, optimizer, alpha=alpha, fit_intercept=fit_intercept
    )
    return engine.compiled, loss_sum, n_seen, optimizer.t, coef, intercept


@pytest.mark.parametrize(
    "schedule, n_classes, weighted, fit_intercept, eta0, alpha, batch_size, index_dtype",
    [
        ("constant", 4, False, True, 0.3, ALPHA, 32, np.int32),
        ("optimal", 2, True, True, 0.3, ALPHA, 32, np.int64),
        ("invscaling", 3, True, False, 0.3, ALPHA, 30, np.int32),
        ("adaptive", 5, False, True, 0.3, 0.0, 32, np.int32),
        # eta * alpha = 0.45 per step: the scalar shrinkage passes 1e-6 and is folded in
        ("constant", 3, False, True, 0.9, 0.5, 8, np.int32),
        # eta * alpha = 0.6: too large for the scalar, applied to every weight
        ("constant", 4, True, True, 0.6, 1.0, 32, np.int64),
    ],
)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("coef_order", ["F", "C"])  # F: in place, as fit keeps it; C: copied
def test_compiled_sparse_epoch_matches_numpy_sparse_epoch(
    monkeypatch, dtype, coef_order, schedule, n_classes, weighted, fit_intercept, eta0, alpha,
    batch_size, index_dtype,
):  # fmt: skip
    X, y = make_problem(N_SAMPLES, 40, n_classes, dtype, sparse=True)
    X.indices = X.indices.astype(index_dtype)
    X.indptr = X.indptr.astype(index_dtype)
    rng = np.random.default_rng(11)
    weights = (rng.uniform(0.0, 3.0, N_SAMPLES)).astype(dtype) if weighted else None
    order = rng.permutation(N_SAMPLES)
    n_params = 1 if n_classes == 2 else n_classes
    coef0 = (0.1 * rng.standard_normal((n_params, 40))).astype(dtype, order=coef_order)
    intercept0 = (0.1 * rng.standard_normal(n_params)).astype(dtype)
    options = dict(
        schedule=schedule,
        eta0=eta0,
        alpha=alpha,
        batch_size=batch_size,
        fit_intercept=fit_intercept,
    )
    monkeypatch.setenv("SKSOFTMAX_NUMBA", "0")
    expected = _sparse_epoch(X, y, weights, order, coef0, intercept0, **options)
    monkeypatch.delenv("SKSOFTMAX_NUMBA")
    monkeypatch.setattr(engine_module, "COMPILED_MIN_NNZ", 0)
    actual = _sparse_epoch(X, y, weights, order, coef0, intercept0, **options)
    assert (actual[0], expected[0]) == (True, False)
    assert actual[2:4] == expected[2:4] == (N_SAMPLES, N_SAMPLES)
    rtol = RTOL[dtype]
    assert_allclose(actual[1], expected[1], rtol=rtol)
    _assert_close(actual[4], expected[4], rtol, "coef")
    _assert_close(actual[5], expected[5], rtol, "intercept")
    assert actual[4].dtype == dtype


def test_compiled_sparse_divergence_and_stop(monkeypatch):
    """Same DivergenceError as the numpy sparse epoch, the weights written back to
    coef whatever way the epoch ends, and Ctrl-C polled per chunk."""
    X, y = make_problem(N_SAMPLES, 40, 3, np.float64, sparse=True)
    coef0 = np.zeros((3, 40))
    results = []
    for compiled in (False, True):
        if compiled:
            monkeypatch.delenv("SKSOFTMAX_NUMBA", raising=False)
            monkeypatch.setattr(engine_module, "COMPILED_MIN_NNZ", 0)
        else:
            monkeypatch.setenv("SKSOFTMAX_NUMBA", "0")
        coef, intercept = coef0.copy(), np.zeros(3)
        optimizer = SGDOptimizer(
            [coef, intercept], learning_rate="constant", eta0=1e20, power_t=0.5, alpha=0.0
        )
        engine = EpochEngine(X, 3, 32)
        assert engine.compiled == compiled
        with pytest.raises(DivergenceError) as error:
            engine.run_epoch(
                X, y, None, None, coef, intercept, optimizer, alpha=0.0, fit_intercept=True
            )
        results.append((str(error.value), optimizer.t, coef))
    assert results[0][:2] == results[1][:2]
    assert_allclose(results[1][2], results[0][2], rtol=1e-10)
    assert np.abs(results[1][2]).max() > 1e10  # the first, huge step reached coef

    monkeypatch.setattr(engine_module, "COMPILED_CHUNK_ROWS", 64)
    coef, intercept = coef0.copy(), np.zeros(3)
    optimizer = SGDOptimizer(
        [coef, intercept], learning_rate="constant", eta0=0.3, power_t=0.5, alpha=ALPHA
    )
    calls = []
    _, n_seen = EpochEngine(X, 3, 32).run_epoch(
        X,
        y,
        None,
        None,
        coef,
        intercept,
        optimizer,
        alpha=ALPHA,
        fit_intercept=True,
        stop_requested=lambda: calls.append(1) or True,
    )
    assert (n_seen, optimizer.t, len(calls)) == (64, 64, 1)
    assert np.abs(coef).max() > 0


def test_sparse_selection_follows_non_zeros_model_size_and_optimiser(monkeypatch):
    monkeypatch.delenv("SKSOFTMAX_NUMBA", raising=False)
    X = sp.random(1000, 500, density=0.01, format="csr", random_state=0)
    monkeypatch.setattr(engine_module, "COMPILED_MIN_NNZ", X.nnz)
    assert EpochEngine(X, 3, 32).compiled
    assert not EpochEngine(X, 3, 32, sparse_kernels=False).compiled  # a rule they lack
    monkeypatch.setattr(engine_module, "COMPILED_MIN_NNZ", X.nnz + 1)
    assert not EpochEngine(X, 3, 32).compiled
    # A small chunk of a stream into a large model: the model size decides.
    monkeypatch.setattr(engine_module, "COMPILED_MIN_SIZE", 500 * 4)
    assert EpochEngine(X, 4, 32).compiled
    assert not EpochEngine(X, 3, 32).compiled


def _non_canonical_csr(X):
    """X with rows reversed in storage (unsorted indices), each non-zero split in
    two duplicate entries, explicit zeros, and every 10th row emptied."""
    X = X.tocsr(copy=True)
    for i in range(0, X.shape[0], 10):
        X.data[X.indptr[i] : X.indptr[i + 1]] = 0.0
    X.eliminate_zeros()
    rows, cols, values = [], [], []
    for i in range(X.shape[0]):
        lo, hi = X.indptr[i], X.indptr[i + 1]
        for c, v in zip(X.indices[lo:hi][::-1], X.data[lo:hi][::-1], strict=True):
            rows += [i, i, i]
            cols += [c, c, c]
            values += [0.25 * v, 0.0, 0.75 * v]
    indptr = np.searchsorted(rows, np.arange(X.shape[0] + 1))
    odd = sp.csr_matrix((np.array(values), np.array(cols), indptr), shape=X.shape)
    assert not odd.has_canonical_format
    return odd


def test_compiled_sparse_fit_matches_numpy_on_non_canonical_csr(monkeypatch):
    """Estimator level, duplicate and unsorted column indices, explicit zeros,
    empty rows: the compiled sparse fit equals the numpy sparse fit, and both equal
    the fit on the canonical matrix (eta0="auto" included: row norms must merge
    duplicate entries)."""
    X, y = make_problem(N_SAMPLES, 40, 3, np.float64, sparse=True)
    odd = _non_canonical_csr(X)
    canonical = odd.copy()
    canonical.sum_duplicates()
    params = dict(alpha=0.01, max_iter=4, tol=None, random_state=0, batch_size=16)
    monkeypatch.setenv("SKSOFTMAX_NUMBA", "0")
    reference = SoftmaxRegressor(**params).fit(canonical, y)
    numpy_odd = SoftmaxRegressor(**params).fit(odd, y)
    monkeypatch.delenv("SKSOFTMAX_NUMBA")
    monkeypatch.setattr(engine_module, "COMPILED_MIN_NNZ", 0)
    compiled_odd = SoftmaxRegressor(**params).fit(odd, y)
    for model in (numpy_odd, compiled_odd):
        assert_allclose(model.coef_, reference.coef_, rtol=1e-10, atol=1e-12)
        assert_allclose(model.intercept_, reference.intercept_, rtol=1e-10, atol=1e-12)
    assert compiled_odd.coef_.flags.f_contiguous


# ------------------------------------------------------------ NaN and infinity in partial_fit
#
# On a fitted model, partial_fit leaves the scan of dense X for NaN and infinity to
# the compiled epoch, which checks every logit; the numpy engine's path scans X
# first. Either way the user must get scikit-learn's own error, and lose nothing.


def _sklearn_error(X):
    """The message scikit-learn's input check gives for X (the oracle)."""
    with pytest.raises(ValueError) as info:
        check_array(X, input_name="X", estimator=SoftmaxRegressor())
    return str(info.value)


def _partially_fitted(X, y, **params):
    return SoftmaxRegressor(batch_size=32, random_state=0, **params).partial_fit(
        X, y, classes=[0, 1, 2]
    )


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("row", ["first", "last", "zero weight"])
def test_nonfinite_X_in_a_later_partial_fit_raises_sklearns_error_and_loses_nothing(
    force_path, path, dtype, value, row
):
    taken = force_path(path)
    X, y = make_problem(N_SAMPLES, N_FEATURES, 3, dtype, sparse=False)
    weights = np.ones(N_SAMPLES)
    weights[17] = 0.0
    bad = X.copy()
    bad[{"first": 0, "last": N_SAMPLES - 1, "zero weight": 17}[row], 5] = value
    clf = _partially_fitted(X, y)
    untouched = _partially_fitted(X, y)
    taken.clear()
    with pytest.raises(ValueError) as info:
        clf.partial_fit(bad, y, sample_weight=weights)
    assert str(info.value) == _sklearn_error(bad)
    assert info.value.__suppress_context__ or info.value.__context__ is None
    # Compiled: the epoch ran and met the row. numpy: X was scanned before any epoch.
    assert taken == ([True] if path == "compiled" else [])
    # Loses nothing: the next call gives what it gives on a model that never saw `bad`.
    clf.partial_fit(X, y, sample_weight=weights)
    untouched.partial_fit(X, y, sample_weight=weights)
    assert_array_equal(clf.coef_, untouched.coef_)
    assert_array_equal(clf.intercept_, untouched.intercept_)
    assert (clf.t_, clf.n_iter_, clf.loss_curve_) == (
        untouched.t_,
        untouched.n_iter_,
        untouched.loss_curve_,
    )


@pytest.mark.parametrize(
    "case, expected_scans",
    [
        ("first call", 1),  # validate_data's scan: eta0="auto" reads X before training
        ("later call, compiled", 0),  # the epoch checks every row itself
        ("later call, numpy engine", 1),
        ("later call, sparse", 1),  # validate_data's scan of .data
    ],
)
def test_partial_fit_scans_X_for_nan_only_where_the_epoch_does_not(
    force_path, monkeypatch, case, expected_scans
):
    from sklearn.utils import validation

    X, y = make_problem(N_SAMPLES, N_FEATURES, 3, np.float64, sparse="sparse" in case)
    taken = force_path("numpy" if "numpy" in case else "compiled")
    monkeypatch.setattr(engine_module, "COMPILED_MIN_NNZ", 0)
    clf = None if case == "first call" else _partially_fitted(X, y)
    scanned = []
    real_check = validation._assert_all_finite

    def counting_check(values, *args, **kwargs):
        if values.shape == (X.data if sp.issparse(X) else X).shape:
            scanned.append(1)
        return real_check(values, *args, **kwargs)

    monkeypatch.setattr(validation, "_assert_all_finite", counting_check)
    taken.clear()
    if clf is None:
        _partially_fitted(X, y)
    else:
        clf.partial_fit(X, y)
    assert len(scanned) == expected_scans
    _assert_took(taken, "numpy" if "numpy" in case else "compiled", n_epochs=1)


def test_interrupted_partial_fit_still_rejects_nan_in_rows_it_did_not_reach(
    force_path, monkeypatch
):
    from sksoftmax import _compiled

    force_path("compiled")
    monkeypatch.setattr(engine_module, "COMPILED_CHUNK_ROWS", 64)
    X, y = make_problem(N_SAMPLES, N_FEATURES, 3, np.float64, sparse=False)
    clf = _partially_fitted(X, y, shuffle=False)
    untouched = _partially_fitted(X, y, shuffle=False)
    real_chunk = _compiled.dense_epoch_chunk
    chunks = []

    def one_chunk_then_interrupt(*args):
        real_chunk(*args)
        chunks.append(args[4:6])  # (start, stop) of the rows it trained on
        raise KeyboardInterrupt

    monkeypatch.setattr(_compiled, "dense_epoch_chunk", one_chunk_then_interrupt)
    bad = X.copy()
    bad[N_SAMPLES - 1, 0] = np.nan  # unshuffled: the last row, past the first chunk
    with pytest.raises(ValueError, match="Input X contains NaN"):
        clf.partial_fit(bad, y)
    assert chunks == [(0, 64)]
    monkeypatch.undo()
    clf.partial_fit(X, y)
    untouched.partial_fit(X, y)
    assert_array_equal(clf.coef_, untouched.coef_)
    assert clf.t_ == untouched.t_


@pytest.mark.parametrize("path", PATHS)
def test_nan_in_X_when_eta0_auto_must_first_estimate_the_curvature(force_path, path):
    """A model fitted with a number for eta0, then set to eta0="auto": partial_fit
    estimates the curvature from X before training, so X must be scanned first,
    or the NaN surfaces as an overflowing curvature estimate."""
    force_path(path)
    X, y = make_problem(N_SAMPLES, N_FEATURES, 3, np.float64, sparse=False)
    clf = _partially_fitted(X, y, eta0=0.1).set_params(eta0="auto")
    untouched = _partially_fitted(X, y, eta0=0.1).set_params(eta0="auto")
    bad = X.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError) as info:
        clf.partial_fit(bad, y)
    assert str(info.value) == _sklearn_error(bad)
    clf.partial_fit(X, y)
    untouched.partial_fit(X, y)
    assert_array_equal(clf.coef_, untouched.coef_)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_sparse_fit_objective_through_the_compiled_product(force_path, dtype):
    """On CSR the exact objective after each epoch is computed by the compiled
    product: it equals the reference objective of the returned weights."""
    X, y = make_problem(400, 30, 4, dtype, sparse=True)
    taken = force_path("compiled")
    model = SoftmaxRegressor(max_iter=2, tol=None, random_state=0, alpha=0.01).fit(X, y)
    _assert_took(taken, "compiled", n_epochs=2)
    engine = EpochEngine(X, 4, 128)
    assert engine.logits_function(np.asfortranarray(model.coef_)) is not None
    expected = objective(
        model.coef_.astype(np.float64), model.intercept_.astype(np.float64), X, y, alpha=0.01
    )
    rtol = 1e-12 if dtype == np.float64 else 1e-5
    assert model.loss_curve_[-1] == pytest.approx(expected, rel=rtol)


@pytest.mark.parametrize("kernel", ["sparse_saga_epoch_chunk", "sparse_momentum_epoch_chunk"])
@pytest.mark.parametrize("centred", [False, True])
def test_sparse_kernels_stay_in_bounds(force_path, monkeypatch, kernel, centred):
    """The kernels compile without bounds checks; their Python function does index
    checking. Each outer kernel run as Python on a small epoch, uncentred (empty
    centring arrays: the SAGA kernel once stepped an empty ``offset_dot``) and
    centred, must give the compiled kernel's result."""
    from sksoftmax import _compiled
    from sksoftmax._optim import SAGAMemory
    from sksoftmax._penalty import Penalty

    X, y = make_problem(N_SAMPLES, 40, 3, np.float64, sparse=True, seed=4)
    offset = np.asarray(X.mean(axis=0)).ravel() if centred else None
    force_path("compiled")
    results = []
    for as_python in (False, True):
        if as_python:
            python_function = getattr(_compiled, kernel).py_func
            monkeypatch.setattr(_compiled, kernel, python_function)
        coef, intercept = np.zeros((3, 40), order="F"), np.zeros(3)
        momentum = 0.9 if "momentum" in kernel else 0.0
        rule = SGDOptimizer(
            [coef, intercept], learning_rate="constant", eta0=0.1, power_t=0.5, alpha=0.0,
            momentum=momentum, average=bool(momentum),
        )  # fmt: skip
        saga = SAGAMemory(N_SAMPLES, N_SAMPLES, coef, intercept, 32) if not momentum else None
        engine = EpochEngine(X, 3, 32)
        expected_path = "compiled sparse momentum" if momentum else "compiled sparse saga"
        assert engine.path(coef, rule, saga, Penalty(0.01)) == expected_path
        engine.run_epoch(X, y, None, None, coef, intercept, rule, penalty=Penalty(0.01),
                         fit_intercept=True, offset=offset, saga=saga)  # fmt: skip
        results.append(coef)
    assert np.abs(results[0]).max() > 0
    assert_allclose(results[1], results[0], rtol=1e-12, atol=1e-14)
