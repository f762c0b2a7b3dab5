"""Training and prediction on array-API namespaces (torch, CuPy, array_api_strict).

Under ``sklearn.set_config(array_api_dispatch=True)`` a non-numpy ``X``
trains in its own namespace and on its own device, and the fitted arrays
stay there ("everything follows X", scikit-learn's rule). The work is split:

- the data plane (``X``, the weights, the optimiser's buffers, SAGA's memory,
  every batch product) is in the namespace, on the device;
- the control plane stays on the host in numpy: the labels and sample
  weights (``n_samples`` numbers, validated and weighted as for numpy
  input), the classes, the random row order (drawn from the same
  RandomState as the numpy engine, so the batches are the same), the
  stopping rule, which reads a few Python floats per epoch.

NumPy input, sparse input and the numba engine keep the numpy code paths
(:mod:`sksoftmax._engine`), which are the reference of this one
(:mod:`sksoftmax._xp_engine`).
"""

import copy
import math
import sys
import threading
from contextlib import contextmanager

import numpy as np
import scipy.sparse as sp
from sklearn import get_config
from sklearn.utils import check_random_state
from sklearn.utils.random import sample_without_replacement

from ._loss import objective_in_chunks as _numpy_objective_in_chunks
from ._optim import Curvature, SAGAMemory, SGDOptimizer
from ._persistence import persistent

# Rows per chunk of the objective and of the predictions: a device does one
# large product better than many small ones.
_CHUNK_ROWS = 8192


# ---------------------------------------------------------------- namespaces


def namespace(*arrays):
    """``(xp, device)`` of the first array when it is a non-numpy array-API array
    and array_api_dispatch is on; None otherwise (numpy code paths).

    Parameters
    ----------
    *arrays : array-like or None

    Returns
    -------
    xp_and_device : tuple or None
    """
    if not get_config().get("array_api_dispatch", False):
        return None
    from sklearn.utils._array_api import _is_numpy_namespace, get_namespace_and_device

    for array in arrays:
        if array is None or sp.issparse(array) or isinstance(array, np.ndarray):
            return None
        if not is_xp(array):
            return None
        _check_dense(array)
        xp, _, device = get_namespace_and_device(array)
        return None if _is_numpy_namespace(xp) else (xp, device)
    return None


def is_xp(array):
    """Whether ``array`` is an array of a non-numpy array-API namespace."""
    if array is None or isinstance(array, (np.ndarray, np.generic)) or sp.issparse(array):
        return False
    from sklearn.externals.array_api_compat import is_array_api_obj

    return is_array_api_obj(array)


def _check_dense(array):
    """Sparse tensors of torch (or CuPy's sparse matrices) are not trained on."""
    layout = getattr(array, "layout", None)
    if layout is not None and "strided" not in str(layout):
        raise TypeError(
            f"X is a sparse {type(array).__name__} ({layout}): under array_api_dispatch "
            "SoftmaxRegressor trains on dense arrays only. Pass a dense tensor "
            "(X.to_dense()), or a scipy.sparse CSR matrix, which trains with numpy."
        )


def float_dtypes(xp, device):
    """Training dtypes on ``device``, widest first: float64 where it exists, float32."""
    from sklearn.utils._array_api import supported_float_dtypes

    return [d for d in supported_float_dtypes(xp, device) if d in (xp.float64, xp.float32)]


def to_host(array):
    """``array`` as a numpy array when it is a non-numpy array-API array; else itself."""
    if not is_xp(array):
        return array
    from sklearn.utils._array_api import move_to

    return move_to(array, xp=np, device="cpu")


def to_device(array, xp, device, dtype=None):
    """A host array (or None) as an array of ``xp`` on ``device``."""
    if array is None:
        return None
    if is_xp(array):
        from sklearn.utils._array_api import move_to

        array = move_to(array, xp=xp, device=device)
        return array if dtype is None else xp.astype(array, dtype)
    array = np.ascontiguousarray(array)
    return xp.asarray(array, dtype=dtype, device=device)


def namespace_of(array):
    """``(xp, device)`` of an array-API array."""
    from sklearn.utils._array_api import get_namespace_and_device

    xp, _, device = get_namespace_and_device(array)
    return xp, device


def numpy_dtype(dtype):
    """The numpy dtype of the same name as an array-API float dtype."""
    return np.float32 if "32" in str(dtype) else np.float64


def _widest(xp, device):
    """float64 where the device has it, else float32: the dtype of sums."""
    return float_dtypes(xp, device)[0]


def copy_array(xp, array):
    """A copy of ``array`` in its namespace (``.copy()`` is not in the standard)."""
    return xp.asarray(array, copy=True)


def host_stub(X):
    """A numpy array of X's rows and dtype and no columns: for validators of the
    host-side arrays (sample weights), which read only X's length and dtype."""
    return np.empty((X.shape[0], 0), dtype=numpy_dtype(X.dtype))


@contextmanager
def few_threads(xp, device, work):
    """torch on the CPU runs products of fewer than ``SMALL_PRODUCT_FLOPS``
    multiply-adds on one thread, as the numpy engine does BLAS.

    Measured on 2 cores with another process busy: two threads made a SAGA
    epoch of 50,000 x 784 x 10 classes 15x slower (10 s against 0.66 s), and a
    fit on iris 20x slower, spinning in torch's pool around each tiny operation.
    Only in the main thread (the setting is process-wide), as for BLAS.
    """
    from ._engine import SMALL_PRODUCT_FLOPS

    torch = sys.modules.get("torch")
    small = work < SMALL_PRODUCT_FLOPS and "torch" in xp.__name__
    on_cpu = getattr(device, "type", str(device)) == "cpu"
    if not (small and on_cpu and torch is not None) or (
        threading.current_thread() is not threading.main_thread()
    ):
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


# ---------------------------------------------------------------- objective


def squared_norm(coef):
    """``||coef||^2`` as a Python float."""
    if not is_xp(coef):
        return float(np.einsum("ij,ij->", coef, coef, dtype=np.float64))
    xp, device = namespace_of(coef)
    c = xp.astype(coef, _widest(xp, device))
    return float(xp.sum(c * c))


def _one_hot(xp, y, n_columns, dtype, device):
    """``(m, n_columns)`` indicator of the classes ``y`` (class indices)."""
    columns = xp.arange(n_columns, device=device)
    return xp.astype(xp.reshape(y, (-1, 1)) == xp.reshape(columns, (1, -1)), dtype)


def _full_logits(xp, Z):
    """:func:`sksoftmax._loss.full_logits` in ``xp``."""
    if Z.shape[1] > 1:
        return Z
    return xp.concat([xp.zeros_like(Z), Z], axis=1)


def log_softmax(xp, Z):
    """Row-wise log-softmax by log-sum-exp (max-shifted)."""
    shifted = Z - xp.max(Z, axis=1, keepdims=True)
    return shifted - xp.log(xp.sum(xp.exp(shifted), axis=1, keepdims=True))


def softmax(xp, Z):
    """Row-wise softmax, max-shifted."""
    E = xp.exp(Z - xp.max(Z, axis=1, keepdims=True))
    return E / xp.sum(E, axis=1, keepdims=True)


def _rows_of(xp, X, part):
    """``X[part]``: a slice, or a device array of row numbers."""
    return X[part, ...] if isinstance(part, slice) else xp.take(X, part, axis=0)


def penalty_value(penalty, coef):
    """The penalty at ``coef`` of any namespace: ``penalty`` a Penalty or an L2 strength.

    The array-API engine applies L2 only (the estimator refuses an L1 part there).
    """
    if not is_xp(coef):
        return penalty.value(coef) if hasattr(penalty, "value") else 0.5 * penalty * float(
            np.einsum("ij,ij->", coef, coef, dtype=np.float64)
        )
    l2 = penalty.l2 if hasattr(penalty, "l2") else float(penalty)
    return 0.5 * l2 * squared_norm(coef)


def objective_in_chunks(X, y, sample_weight, coef, intercept, alpha, rows=None, **kwargs):
    """:func:`sksoftmax._loss.objective_in_chunks`, for numpy or array-API ``X``.

    ``y``, ``sample_weight`` and ``rows`` are host arrays either way; for an
    array-API ``X`` the logits and the cross-entropy are computed on its
    device, in float64 where the device has it, and only two floats come back.

    Returns
    -------
    value : float
    max_abs_logit : float
    """
    if not is_xp(X):
        return _numpy_objective_in_chunks(
            X, y, sample_weight, coef, intercept, alpha, rows=rows, **kwargs
        )
    xp, device = namespace_of(X)
    wide = _widest(xp, device)
    n_rows = X.shape[0] if rows is None else len(rows)
    y_dev = to_device(np.asarray(y) if rows is None else np.asarray(y)[rows], xp, device)
    w_dev = None
    if sample_weight is not None:
        w = np.asarray(sample_weight) if rows is None else np.asarray(sample_weight)[rows]
        w_dev = to_device(w.astype(np.float64), xp, device, wide)
    rows_dev = None if rows is None else to_device(np.asarray(rows, np.int64), xp, device)
    ce_sum = xp.zeros((), dtype=wide, device=device)
    max_abs = xp.zeros((), dtype=wide, device=device)
    with few_threads(xp, device, min(n_rows, _CHUNK_ROWS) * coef.shape[0] * coef.shape[1]):
        for start in range(0, n_rows, _CHUNK_ROWS):
            stop = min(start + _CHUNK_ROWS, n_rows)
            part = slice(start, stop) if rows_dev is None else rows_dev[start:stop]
            Z = _rows_of(xp, X, part) @ coef.T + intercept
            max_abs = xp.maximum(max_abs, xp.astype(xp.max(xp.abs(Z)), wide))
            Z = _full_logits(xp, xp.astype(Z, wide))
            Y = _one_hot(xp, y_dev[start:stop], Z.shape[1], wide, device)
            ce = -xp.sum(log_softmax(xp, Z) * Y, axis=1)
            ce_sum = ce_sum + (xp.sum(ce) if w_dev is None else xp.sum(w_dev[start:stop] * ce))
        max_abs = float(max_abs)
        if not math.isfinite(max_abs):
            return float("nan"), float("nan")
        weight_sum = float(n_rows) if w_dev is None else float(xp.sum(w_dev))
        return float(ce_sum) / weight_sum + penalty_value(alpha, coef), max_abs


def validation_score(X, y_idx, rows, weights, coef, intercept, scoring):
    """Negated weighted log-loss or weighted accuracy on ``X[rows]`` (host rows)."""
    xp, device = namespace_of(X)
    wide = _widest(xp, device)
    w = np.asarray(weights, dtype=np.float64)[rows]
    y_dev = to_device(np.asarray(y_idx)[rows], xp, device)
    w_dev = to_device(w, xp, device, wide)
    rows_dev = to_device(np.asarray(rows, np.int64), xp, device)
    total = xp.zeros((), dtype=wide, device=device)
    with few_threads(xp, device, min(len(rows), _CHUNK_ROWS) * coef.shape[0] * coef.shape[1]):
        for start in range(0, len(rows), _CHUNK_ROWS):
            part = slice(start, min(start + _CHUNK_ROWS, len(rows)))
            Z = _full_logits(xp, _rows_of(xp, X, rows_dev[part]) @ coef.T + intercept)
            if scoring == "loss":
                log_p = log_softmax(xp, xp.astype(Z, wide))
                true = xp.sum(log_p * _one_hot(xp, y_dev[part], Z.shape[1], wide, device), axis=1)
                total = total + xp.sum(w_dev[part] * true)
            else:
                hit = xp.astype(xp.argmax(Z, axis=1) == y_dev[part], wide)
                total = total + xp.sum(w_dev[part] * hit)
    return float(total) / float(w.sum())


# ---------------------------------------------------------------- training state


def feature_offset(X, sample_weight):
    """The weighted mean row of array-API ``X`` (see ``_feature_offset_for``), or None
    where it is not finite."""
    xp, device = namespace_of(X)
    weights = np.ones(X.shape[0]) if sample_weight is None else sample_weight
    weights = np.asarray(weights, dtype=np.float64) / np.sum(weights, dtype=np.float64)
    offset = to_device(weights, xp, device, X.dtype) @ X
    return offset if bool(xp.all(xp.isfinite(offset))) else None


def initial_params(X, n_params, coef_init, intercept_init, validate):
    """Initial ``(coef, intercept)`` on X's device, in X's dtype.

    ``validate(coef_init, intercept_init, n_features, numpy_dtype)`` checks given
    values on the host (the numpy path's own checks, errors naming the argument)
    and returns numpy arrays, moved here to the device.
    """
    xp, device = namespace_of(X)
    if coef_init is None and intercept_init is None:
        return (
            xp.zeros((n_params, X.shape[1]), dtype=X.dtype, device=device),
            xp.zeros((n_params,), dtype=X.dtype, device=device),
        )
    coef, intercept = validate(to_host(coef_init), to_host(intercept_init))
    coef, intercept = (
        to_device(coef, xp, device, X.dtype),
        to_device(intercept, xp, device, X.dtype),
    )
    check_initial_logits(X, coef, intercept)
    return coef, intercept


def check_initial_logits(X, coef, intercept):
    """Raise ValueError if the initial weights put a logit on X past MAX_LOGIT."""
    from ._engine import MAX_LOGIT

    _, max_abs = objective_in_chunks(X, np.zeros(X.shape[0], np.int64), None, coef, intercept, 0.0)
    if not max_abs < MAX_LOGIT:
        raise ValueError(
            f"coef_init and intercept_init put logits past {MAX_LOGIT:.0e} on X, "
            "where softmax carries no information: start from smaller weights "
            "(or None, zeros)."
        )


def copied_state(estimator):
    """Arguments of ``_TrainingState`` for copies of ``estimator``'s fitted state,
    in the namespace it was fitted in (a failed call then changes nothing)."""

    def copied(array):
        if array is None:
            return None
        if is_xp(array):
            return copy_array(namespace_of(array)[0], array)
        return np.array(array)

    optimizer = copy.copy(estimator._optimizer)
    for name in ("velocities", "averages"):
        buffers = getattr(optimizer, name)
        if buffers is not None:
            setattr(optimizer, name, [copied(b) for b in buffers])
    return (
        [copied(estimator._raw_coef), copied(estimator._raw_intercept)],
        optimizer,
        estimator.n_iter_,
        list(estimator.loss_curve_),
        getattr(estimator, "_weight_scale", None),
        copied(getattr(estimator, "_feature_offset", None)),
    )


def move_state(state, X, order="C"):
    """Move every array of a ``_TrainingState`` (params, offset, optimiser buffers)
    to X's namespace, device and dtype, in place; returns ``state``.

    A model fitted in one namespace continues in another (warm start,
    partial_fit on moved data): the weights move, the training goes on exactly.
    ``order`` is the memory order of numpy weights (see ``_weights_order``).
    """
    xpd = namespace_of(X) if is_xp(X) else None
    dtype = X.dtype

    def move(array, weight_shaped):
        if array is None:
            return None
        if xpd is None:
            host = to_host(array)
            return np.array(host, dtype=dtype, order=order if weight_shaped else "C")
        return to_device(array, *xpd, dtype)

    coef, intercept = state.params
    state.params = [move(coef, True), move(intercept, False)]
    state.offset = move(state.offset, False)
    optimizer = state.optimizer
    for name in ("velocities", "averages"):
        buffers = getattr(optimizer, name)
        if buffers is not None:
            setattr(optimizer, name, [move(buffers[0], True), move(buffers[1], False)])
    optimizer.__class__ = SGDOptimizer if xpd is None else NamespaceOptimizer
    return state


def training_dtypes(xpd, fitted_dtype=None):
    """The ``dtype`` argument of validate_data for training on a namespace.

    Parameters
    ----------
    xpd : tuple or None
        ``(xp, device)`` of X, None for numpy.
    fitted_dtype : dtype or None
        The fitted weights' dtype (partial_fit goes on in it), in whichever
        namespace they live; None for a first call.
    """
    if xpd is None:
        if fitted_dtype is None:
            return [np.float64, np.float32]
        return numpy_dtype(fitted_dtype)
    xp, device = xpd
    if fitted_dtype is None:
        return float_dtypes(xp, device)
    wanted = xp.float32 if numpy_dtype(fitted_dtype) == np.float32 else xp.float64
    return wanted if wanted in float_dtypes(xp, device) else xp.float32


def host_features(X):
    """A numpy array with X's columns and dtype and no rows: for the host-side checks
    of coef_init / intercept_init, which read only X's width and dtype."""
    return np.empty((0, X.shape[1]), dtype=numpy_dtype(X.dtype))


# ---------------------------------------------------------------- prediction


def check_predict_namespace(estimator, X, method):
    """``(xp, device)`` of X for a prediction method (None: numpy), after
    scikit-learn's check that X and the fitted weights share namespace and device.

    Raises
    ------
    ValueError
        When they do not (under array_api_dispatch: scikit-learn's message,
        which says how to move the model with ``move_estimator_to``; without
        it: a model fitted on another namespace asked to predict on numpy).
    """
    if get_config().get("array_api_dispatch", False):
        from sklearn.utils._array_api import check_same_namespace

        if not sp.issparse(X):
            check_same_namespace(X, estimator, attribute="coef_", method=method)
        return namespace(X)
    if is_xp(estimator.coef_):
        library = type(estimator.coef_).__module__.split(".")[0]
        raise ValueError(
            f"{type(estimator).__name__}.{method}(): this model was fitted on "
            f"{library} arrays under array_api_dispatch; predict under "
            "sklearn.config_context(array_api_dispatch=True) with arrays of the same "
            "namespace and device, or move it to numpy first: "
            "sklearn.utils._array_api.move_estimator_to(model, numpy, 'cpu')."
        )
    return None


def decision(scores):
    """``decision_function``'s shape: one column for two classes, raveled."""
    xp, _ = namespace_of(scores)
    return xp.reshape(scores, (-1,)) if scores.shape[1] == 1 else scores


def full_scores(scores):
    """``(xp, logits)`` with the zero logit of class 0 added for two classes."""
    xp, _ = namespace_of(scores)
    return xp, _full_logits(xp, scores)


def predict_labels(scores, classes):
    """Labels of the largest logits: in the scores' namespace and device for numeric
    labels; a numpy array for others (strings, objects), which no namespace holds."""
    xp, device = namespace_of(scores)
    if scores.shape[1] == 1:
        index = xp.astype(scores[:, 0] > 0, xp.int64)
    else:
        index = xp.argmax(scores, axis=1)
    classes_host = to_host(classes)
    if classes_host.dtype.kind in "iufb":
        return xp.take(to_device(classes_host, xp, device), index)
    return classes_host[to_host(index)]


def recentre(state, offset):
    """``_recentre`` for array-API states: the intercepts move by ``W (mu' - mu)``."""
    old = state.offset
    if old is None and offset is None:
        return
    coef = state.params[0]
    xp, device = namespace_of(coef)
    zeros = xp.zeros((coef.shape[1],), dtype=coef.dtype, device=device)
    shift = (zeros if offset is None else offset) - (zeros if old is None else old)
    optimizer = state.optimizer
    for pair in (state.params, optimizer.velocities, optimizer.averages):
        if pair is not None:
            pair[1] = pair[1] + pair[0] @ shift
    state.offset = offset


def estimate_curvature(
    X,
    *,
    fit_intercept,
    sample_weight=None,
    n_power_iter=30,
    max_rows=4096,
    random_state=0,
    offset=None,
):
    """:func:`sksoftmax._optim.estimate_curvature` for array-API ``X``, on its device.

    The same rows sampled (the same RandomState draws), the same power
    iteration; the largest row norm over all rows, by chunks of rows.
    """
    xp, device = namespace_of(X)
    wide = _widest(xp, device)
    n_samples = X.shape[0]
    sw = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    relative = (
        None if sw is None or not sw.sum() > 0 else to_device(sw / sw.mean(), xp, device, wide)
    )
    mu = None if offset is None else xp.astype(offset, wide)
    max_norm = xp.zeros((), dtype=wide, device=device)
    for start in range(0, n_samples, _CHUNK_ROWS):
        stop = min(start + _CHUNK_ROWS, n_samples)  # out-of-bounds stops are not standard
        block = xp.astype(X[start:stop, ...], wide)
        if mu is not None:
            block = block - mu
        sq = xp.sum(block * block, axis=1) + float(fit_intercept)
        if relative is not None:
            sq = sq * relative[start:stop]
        max_norm = xp.maximum(max_norm, xp.max(sq))
    max_weighted_sq_norm = float(max_norm)
    n_rows = min(n_samples, max(256, min(max_rows, n_samples // 64)))
    sample = X
    s = None if sw is None or not sw.sum() > 0 else sw
    if n_rows < n_samples:
        rows = np.sort(
            sample_without_replacement(
                n_samples, n_rows, random_state=check_random_state(random_state)
            )
        )
        sample = xp.take(X, to_device(rows.astype(np.int64), xp, device), axis=0)
        s = None if s is None else s[rows]
    n = sample.shape[0]
    s = np.full(n, 1.0 / n) if s is None else s / s.sum()
    s = to_device(s, xp, device, X.dtype)
    v = xp.full((X.shape[1],), 1.0 / math.sqrt(X.shape[1]), dtype=X.dtype, device=device)
    v_b = 1.0 if fit_intercept else 0.0
    mu_x = None if offset is None else xp.astype(offset, X.dtype)
    lambda_max = 0.0
    with few_threads(xp, device, sample.shape[0] * sample.shape[1]):
        for _ in range(n_power_iter):
            shift = v_b if mu_x is None else v_b - float(xp.sum(mu_x * v))
            u = (sample @ v + shift) * s
            w = u @ sample
            u_sum = float(xp.sum(xp.astype(u, wide)))
            if mu_x is not None:
                w = w - mu_x * u_sum
            w_b = u_sum if fit_intercept else 0.0
            w64 = xp.astype(w, wide)
            scale = max(float(xp.max(xp.abs(w64))), abs(w_b))
            if scale == 0.0 or not math.isfinite(scale):
                lambda_max = scale if not math.isfinite(scale) else lambda_max
                break
            norm = scale * math.sqrt(float(xp.sum((w64 / scale) ** 2)) + (w_b / scale) ** 2)
            lambda_max = norm
            if not math.isfinite(norm):
                break
            v, v_b = xp.astype(w64 / norm, X.dtype), w_b / norm
    if not (math.isfinite(lambda_max) and math.isfinite(max_weighted_sq_norm)):
        raise ValueError(
            f"eta0='auto' cannot size the step for this X: its curvature estimate "
            f"overflows {X.dtype} (the features are too large to square and sum). "
            "Scale the features, e.g. with StandardScaler, or set eta0 to a number."
        )
    return Curvature(lambda_max, max_weighted_sq_norm, n_samples)


@persistent
class NamespaceOptimizer(SGDOptimizer):
    """:class:`~sksoftmax._optim.SGDOptimizer` whose parameters and buffers are
    arrays of an array-API namespace: the same schedules, counters and update rule.

    Parameters are updated in place (``p -= ...``, in the standard); the
    buffers are replaced by new arrays at each step.
    """

    def __init__(self, params, **options):
        super().__init__([], **options)
        self._make_buffers(params)

    def _make_buffers(self, params, velocities=True, averages=True):
        xp, _ = namespace_of(params[0])
        if velocities:
            self.velocities = [xp.zeros_like(p) for p in params] if self.momentum else None
        if averages:
            self.averages = [copy_array(xp, p) for p in params] if self.averaging else None

    def set_hyperparameters(self, params, **options):
        """See :meth:`SGDOptimizer.set_hyperparameters`; new average buffers in ``xp``."""
        had_averages = self.averaging
        super().set_hyperparameters([], **options)
        if self.averaging and not had_averages:
            self._make_buffers(params, velocities=False)

    def step(self, params, grads, n_samples):
        """One update: ``v = momentum * v + g``; ``p -= eta * (v, or g + momentum * v)``."""
        eta = self.current_eta()
        if self.momentum:
            if self.velocities is None:
                self._make_buffers(params, averages=False)
            for i, (p, g) in enumerate(zip(params, grads, strict=True)):
                v = self.momentum * self.velocities[i] + g
                self.velocities[i] = v
                p -= eta * (g + self.momentum * v) if self.nesterov else eta * v
        else:
            for p, g in zip(params, grads, strict=True):
                p -= eta * g
        self.t += n_samples
        if self.averaging and self.t > self.average_start:
            self.n_averaged += 1
            self.averages = [
                a + (p - a) * (1.0 / self.n_averaged)
                for a, p in zip(self.averages, params, strict=True)
            ]
        elif self.averaging:
            xp, _ = namespace_of(params[0])
            self.averages = [copy_array(xp, p) for p in params]


class NamespaceSAGAMemory(SAGAMemory):
    """:class:`~sksoftmax._optim.SAGAMemory` on a device.

    The residual table is indexed by position among the training rows (row
    number where all rows train), ``(n_train, n_params)``; an epoch permutes
    it into its visiting order once, so that every batch reads and writes a
    slice (scattering by row numbers is not in the array-API standard), and
    puts it back in row order when the epoch ends.
    """

    def __init__(self, n_samples, n_train, coef, intercept, batch_size, train_rows=None):
        xp, device = namespace_of(coef)
        self.xp, self.device = xp, device
        self.residuals = xp.zeros((n_train, coef.shape[0]), dtype=coef.dtype, device=device)
        self.mean_grad_coef = xp.zeros_like(coef)
        self.mean_grad_intercept = xp.zeros_like(intercept)
        self.factor = float(batch_size) / float(n_train)
        self.train_rows = train_rows

    def positions(self, order, n_rows):
        """Host positions in the table of the rows ``order`` (None: all, in order)."""
        if order is None:
            return np.arange(n_rows)
        order = np.asarray(order)
        return order if self.train_rows is None else np.searchsorted(self.train_rows, order)

    def forget(self):
        """Empty the memory, as at the start."""
        xp = self.xp
        self.residuals = xp.zeros_like(self.residuals)
        self.mean_grad_coef = xp.zeros_like(self.mean_grad_coef)
        self.mean_grad_intercept = xp.zeros_like(self.mean_grad_intercept)

    def direction(self, grad_coef, grad_intercept, share):
        """``G + share * mean`` for each part, and ``mean += factor * G``; new arrays."""
        direction_coef = grad_coef + share * self.mean_grad_coef
        direction_intercept = grad_intercept + share * self.mean_grad_intercept
        self.mean_grad_coef = self.mean_grad_coef + self.factor * grad_coef
        self.mean_grad_intercept = self.mean_grad_intercept + self.factor * grad_intercept
        return direction_coef, direction_intercept


def convert_estimator(estimator, converter):
    """``__sklearn_array_api_convert__``: a clone with every array moved by ``converter``,
    the optimiser's buffers included (so that partial_fit goes on where it was
    moved), ``classes_`` left on the host (labels may be strings)."""
    from sklearn.base import clone

    new = clone(estimator)

    def convert(value):
        if isinstance(value, (list, tuple)):
            return type(value)(convert(v) for v in value)
        if isinstance(value, np.ndarray) or is_xp(value):
            return converter(value)
        return value

    for key, value in vars(estimator).items():
        if key == "classes_":
            setattr(new, key, copy.deepcopy(value))
        elif isinstance(value, SGDOptimizer):
            optimizer = copy.copy(value)
            optimizer.velocities = convert(value.velocities)
            optimizer.averages = convert(value.averages)
            target = value.velocities or value.averages
            moved = convert(target[0]) if target else converter(np.zeros(1))
            optimizer.__class__ = NamespaceOptimizer if is_xp(moved) else SGDOptimizer
            setattr(new, key, optimizer)
        else:
            setattr(new, key, convert(value))
    return new
