"""Minibatch SGD: step-size schedules, momentum, Nesterov and Polyak averaging.

The optimiser owns every piece of training state that must survive between
``partial_fit`` calls, warm-started refits and pickling: the sample counter
``t``, the current step of the "adaptive" schedule, the momentum buffers and
the running averages. It knows nothing of the model; it updates arrays in place.
"""

import math

import numpy as np
import scipy.sparse as sp
from sklearn.utils import check_random_state
from sklearn.utils.extmath import row_norms, safe_sparse_dot
from sklearn.utils.random import sample_without_replacement

from ._penalty import cumulative_l1_, soft_threshold_

LEARNING_RATES = ("constant", "optimal", "invscaling", "adaptive")
SOLVERS = ("auto", "saga", "sgd")

# Below this step the "adaptive" schedule gives up and declares convergence,
# as sklearn's SGD does.
ADAPTIVE_MIN_ETA = 1e-6


def optimal_offset(alpha):
    """Offset ``t0`` of sklearn's "optimal" schedule ``eta = 1 / (alpha * (t0 + t - 1))``.

    Léon Bottou's heuristic, as in ``sklearn.linear_model.SGDClassifier``
    with the log loss: ``t0`` makes the first step (``t = 1``) equal to the
    typical weight ``alpha ** -0.25``. sklearn divides that weight by
    ``max(1, dloss)`` with ``dloss`` the signed log-loss derivative at
    ``(y=1, p=-typical_weight)``, which is negative, so the divisor is 1.

    Parameters
    ----------
    alpha : float
        L2 strength, > 0.

    Returns
    -------
    t0 : float
    """
    typical_weight = math.sqrt(1.0 / math.sqrt(alpha))
    initial_eta = typical_weight
    return 1.0 / (initial_eta * alpha)


class Curvature:
    """Estimates of the data's curvature, from which the "auto" step is derived.

    Parameters
    ----------
    lambda_max : float
        Top eigenvalue of the weighted second-moment matrix of the rows ``[x_i, 1]``.
    max_weighted_sq_norm : float
        ``max_i (w_i / mean(w)) * (||x_i||^2 + fit_intercept)``: the largest
        curvature one row can add to a batch's mean loss.
    n_samples : int
        Training rows (before any sampling).
    """

    def __init__(self, lambda_max, max_weighted_sq_norm, n_samples):
        self.lambda_max = float(lambda_max)
        self.max_weighted_sq_norm = float(max_weighted_sq_norm)
        self.n_samples = int(n_samples)

    def eta0(self, *, binary, alpha, batch_size, momentum=0.0):
        """The step ``2 / L_batch``, times ``1 - momentum``.

        ``L_batch = c * (lambda_max + f * max_weighted_sq_norm / batch_size) + alpha``
        bounds the curvature of a batch's mean loss, ``c`` being the largest
        eigenvalue of the softmax Hessian in the logits (1/2; 1/4 for binary
        logistic) and ``f = (n - batch_size) / (n - 1)`` the finite-population
        factor of a batch drawn without replacement: 0 for full-batch training,
        whose curvature is ``lambda_max`` itself. Heavy-ball momentum multiplies
        the step by ``1 / (1 - momentum)`` in the long run, hence the factor.

        Parameters
        ----------
        binary : bool
        alpha : float
        batch_size : int
        momentum : float, default=0.0

        Returns
        -------
        eta0 : float
        """
        curvature = 0.25 if binary else 0.5
        n = self.n_samples
        population = max(0.0, (n - batch_size) / (n - 1)) if n > 1 else 0.0
        batch_term = population * self.max_weighted_sq_norm / max(batch_size, 1)
        lipschitz = curvature * (self.lambda_max + batch_term) + alpha
        eta0 = 2.0 / lipschitz if lipschitz > 0 else 1.0
        return eta0 * (1.0 - momentum)


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
    """Estimate the curvature terms of the "auto" step on (a sample of) ``X``.

    ``lambda_max`` comes from power iteration on at most ``max_rows`` rows
    sampled uniformly; the largest row norm is taken over all rows. With sample
    weights the second-moment matrix is the weighted one and each row's norm is
    scaled by its weight over the mean, so integer weights act as repeated rows
    in the second moments (the batch term keeps counting zero-weight rows, which
    batches are drawn from).

    Parameters
    ----------
    X : {ndarray, sparse matrix} of shape (n_samples, n_features)
    fit_intercept : bool
    sample_weight : ndarray of shape (n_samples,), default=None
        Non-negative weights of the rows; None means equal weights.
    n_power_iter : int, default=30
    max_rows : int, default=4096
        Most rows sampled (fewer for small data: ``n_samples // 64``, at least 256).
    random_state : int, RandomState or None, default=0
        Picks the rows sampled when ``X`` has more than that.
    offset : ndarray of shape (n_features,), default=None
        Estimate for the rows ``x_i - offset``, the implicitly centred rows the
        engine trains on, without forming them.

    Returns
    -------
    curvature : Curvature
    """
    n_samples = X.shape[0]
    if sp.issparse(X) and not X.has_canonical_format:
        # Duplicate entries of a column would enter a row's norm as separate squares.
        X = X.copy()
        X.sum_duplicates()
    # Over all rows (one pass, no copy): a rare heavy row is what a sample would miss.
    # w_i / mean(w) is how much the row counts in a batch.
    relative_weight = (
        1.0
        if sample_weight is None or not np.sum(sample_weight) > 0
        else np.asarray(sample_weight, dtype=np.float64) / np.mean(sample_weight, dtype=np.float64)
    )
    sq_norms = _squared_row_norms(X)
    if offset is not None:
        # ||x - mu||^2 = ||x||^2 - 2 x.mu + ||mu||^2, in place (a float64 copy of
        # each term added 2% of X to a fit's peak memory); clipped at 0 against
        # cancellation.
        offset64 = np.asarray(offset, dtype=np.float64)
        with np.errstate(over="ignore", invalid="ignore"):
            cross = safe_sparse_dot(X, offset.astype(X.dtype), dense_output=True)
            sq_norms -= cross
            sq_norms -= cross
            sq_norms += float(offset64 @ offset64)
            np.maximum(sq_norms, 0.0, out=sq_norms)
    max_weighted_sq_norm = float(np.max((sq_norms + fit_intercept) * relative_weight))
    # The sample is a copy: keep it under ~2% of X (at least 256 rows) so fit adds
    # little to peak memory.
    n_rows = min(n_samples, max(256, min(max_rows, n_samples // 64)))
    if n_rows < n_samples:
        rows = np.sort(
            sample_without_replacement(
                n_samples, n_rows, random_state=check_random_state(random_state)
            )
        )
        X = X[rows]
        if sample_weight is not None:
            sample_weight = np.asarray(sample_weight)[rows]
    n = X.shape[0]
    if sample_weight is None or not np.sum(sample_weight) > 0:
        s = np.full(n, 1.0 / n)
    else:
        s = np.asarray(sample_weight, dtype=np.float64)
        s = s / s.sum()
    s = s.astype(X.dtype)
    # In X's dtype, so that the products do not make a float64 copy of the sample.
    v = np.full(X.shape[1], 1.0 / math.sqrt(X.shape[1]), dtype=X.dtype)
    v_b = 1.0 if fit_intercept else 0.0
    mu = None if offset is None else np.asarray(offset, dtype=X.dtype)
    # Overflow is reported below, as one clear error instead of numpy's warnings.
    with np.errstate(over="ignore", invalid="ignore"):
        lambda_max = 0.0
        for _ in range(n_power_iter):
            shift = v_b if mu is None else v_b - float(mu @ v)  # (x - mu) . v
            u = (safe_sparse_dot(X, v, dense_output=True) + shift) * s
            w = safe_sparse_dot(X.T, u, dense_output=True)
            if mu is not None:
                w -= mu * u.sum()
            w_b = float(u.sum()) if fit_intercept else 0.0
            # Scaled by the largest entry, in float64: ||w||^2 itself overflows
            # float64 for entries past 1e154, and float32 long before.
            w64 = w.astype(np.float64)
            scale = max(float(np.max(np.abs(w64), initial=0.0)), abs(w_b))
            if scale == 0.0:
                break
            norm = scale * math.sqrt(float(np.dot(w64 / scale, w64 / scale)) + (w_b / scale) ** 2)
            lambda_max = norm  # ||M v|| with ||v|| = 1 converges to lambda_max from below
            if not math.isfinite(norm):
                break
            # In float64 first: a norm past float32's range would make v all zeros.
            v, v_b = (w64 / norm).astype(X.dtype), w_b / norm
    if not (math.isfinite(lambda_max) and math.isfinite(max_weighted_sq_norm)):
        raise ValueError(
            f"eta0='auto' cannot size the step for this X: its curvature estimate "
            f"overflows {X.dtype} (the features are too large to square and sum). "
            "Scale the features, e.g. with StandardScaler, or set eta0 to a number."
        )
    # All rows, zero weights included: batches are drawn from all of them.
    return Curvature(lambda_max, max_weighted_sq_norm, n_samples)


_NORM_CHUNK_NNZ = 2**20


def _squared_row_norms(X):
    """``||x_i||^2``, in float64 where X's own dtype overflows.

    sklearn's ``row_norms`` sums in X's dtype, without a copy; float32 rows of
    1e18 overflow there to inf, which made the "auto" step 0: a model that never
    moved and still "converged". Only then are the sums redone in float64, which
    for dense float32 X costs ~3x the time, so not on every fit.
    """
    norms = row_norms(X, squared=True)
    if np.isfinite(norms).all() or X.dtype == np.float64:
        return norms
    with np.errstate(over="ignore"):  # inf is reported by estimate_curvature
        if not sp.issparse(X):
            return np.einsum("ij,ij->i", X, X, dtype=np.float64)
        # By chunks of about _NORM_CHUNK_NNZ non-zeros: small float64 squares.
        norms = np.zeros(X.shape[0])
        start = 0
        while start < X.shape[0]:
            lo = X.indptr[start]
            stop = max(start + 1, int(np.searchsorted(X.indptr, lo + _NORM_CHUNK_NNZ, "right")) - 1)
            bounds = X.indptr[start : stop + 1]
            filled = np.flatnonzero(np.diff(bounds))
            if len(filled):
                squares = np.square(X.data[lo : bounds[-1]], dtype=np.float64)
                # Each non-empty row's sum runs to the next non-empty row's start.
                norms[start + filled] = np.add.reduceat(squares, bounds[filled] - lo)
            start = stop
        return norms


class SGDOptimizer:
    """In-place minibatch SGD on a list of parameter arrays.

    Update, with ``g`` the gradient and ``v`` the velocity (as ``torch.optim.SGD``)::

        v = momentum * v + g
        p -= eta * (g + momentum * v if nesterov else v)

    Parameters
    ----------
    params : list of ndarray
        Arrays updated in place by :meth:`step`.
    learning_rate : {"constant", "optimal", "invscaling", "adaptive"}
        Schedule of the step ``eta`` as a function of ``t``, the number of
        samples seen before the batch (``t`` counts from 1 as in sklearn):
        ``eta0``; ``1 / (alpha * (t0 + t - 1))``; ``eta0 / t ** power_t``;
        ``eta0`` divided by 5 at each :meth:`stalled` call.
    eta0 : float
    power_t : float
    alpha : float
        L2 strength, used only by the "optimal" schedule.
    momentum : float, default=0.0
    nesterov : bool, default=False
    average : bool or int, default=False
        When truthy, also keep the Polyak-Ruppert average of each parameter,
        starting once ``t`` exceeds ``average`` samples (``True`` means 1).
    """

    def __init__(
        self,
        params,
        *,
        learning_rate,
        eta0,
        power_t,
        alpha,
        momentum=0.0,
        nesterov=False,
        average=False,
    ):
        self.learning_rate = learning_rate
        self.eta0 = float(eta0)
        self.power_t = float(power_t)
        self.alpha = float(alpha)
        self.momentum = float(momentum)
        self.nesterov = bool(nesterov)
        self.average_start = 0 if average is False else int(average)
        self.averaging = average is not False and average != 0
        self.t = 0
        self.eta = self.eta0  # current step of the adaptive schedule
        self.t0 = optimal_offset(alpha) if learning_rate == "optimal" else 0.0
        self.velocities = [np.zeros_like(p) for p in params] if momentum else None
        self.averages = [p.copy(order="K") for p in params] if self.averaging else None
        self.n_averaged = 0
        # The cumulative L1 penalty's state (see sksoftmax._penalty): the penalty
        # a weight could have received so far, and what each one did receive
        # (float64, coef's shape and order; made at the first L1 step).
        self.l1_total = 0.0
        self.l1_applied = None

    def set_hyperparameters(
        self, params, *, learning_rate, eta0, power_t, alpha, momentum, nesterov, average
    ):
        """Take new hyperparameters for a warm start, keeping ``t`` and the buffers.

        A changed schedule or ``eta0`` restarts the adaptive step; buffers for
        momentum or averaging switched on only now start from scratch.
        """
        if learning_rate != self.learning_rate or float(eta0) != self.eta0:
            self.eta = float(eta0)
        self.learning_rate = learning_rate
        self.eta0 = float(eta0)
        self.power_t = float(power_t)
        self.alpha = float(alpha)
        self.t0 = optimal_offset(alpha) if learning_rate == "optimal" else 0.0
        self.momentum = float(momentum)
        self.nesterov = bool(nesterov)
        if not momentum:
            self.velocities = None
        averaging = average is not False and average != 0
        if averaging and not self.averaging:
            self.averages = [p.copy(order="K") for p in params]
            self.n_averaged = 0
        elif not averaging:
            self.averages = None
            self.n_averaged = 0
        self.averaging = averaging
        self.average_start = 0 if average is False else int(average)

    @property
    def moves_every_weight(self):
        """Whether a step moves every weight, whatever the batch (momentum).

        What the step rule declares to the engines: the plain lazy sparse epochs
        move only a batch's own features, and cannot run such a rule. Averaging
        is kept lazily by them; momentum (the velocity of every weight, the L2
        term's included, moves it at every step) has an epoch of its own on CSR
        in the compiled engine, which takes those steps as one linear map per
        feature when a batch reads it (``_compiled.sparse_momentum_epoch_chunk``).
        """
        return bool(self.momentum)

    @property
    def kernels_implement(self):
        """Whether the engines' own epochs implement this rule: it is this class's.

        The compiled epochs and the lazy sparse one write the rule of
        :meth:`step` and :meth:`current_eta` (once per engine); a subclass that
        changes either is trained by the numpy epoch, which calls them.
        """
        return all(
            getattr(type(self), name) is getattr(SGDOptimizer, name)
            for name in ("step", "current_eta", "shrink_l1", "advance")
        )

    def current_eta(self):
        """Step size of the next batch."""
        t = self.t + 1
        if self.learning_rate == "optimal":
            return 1.0 / (self.alpha * (self.t0 + (t - 1)))
        if self.learning_rate == "invscaling":
            return self.eta0 / t**self.power_t
        return self.eta  # constant and adaptive

    def stalled(self):
        """Report that the watched score stopped improving.

        Returns
        -------
        keep_going : bool
            True when the adaptive schedule could lower its step (it divides
            by 5); False when training should stop.
        """
        if self.learning_rate == "adaptive" and self.eta > ADAPTIVE_MIN_ETA:
            self.eta /= 5.0
            return True
        return False

    def advance(self, n_samples):
        """Count a batch whose update the caller applied itself (plain SGD only)."""
        self.t += n_samples

    def l1_state(self, coef):
        """The cumulative L1 penalty's ``applied`` buffer for ``coef``, made if missing."""
        applied = getattr(self, "l1_applied", None)  # None in models pickled before L1
        if applied is None or applied.shape != coef.shape:
            applied = np.zeros(coef.shape, dtype=np.float64, order="F" if _f_ordered(coef) else "C")
            self.l1_applied = applied
            self.l1_total = float(getattr(self, "l1_total", 0.0))
        return applied

    def accrue_l1(self, threshold):
        """Add one step's L1 penalty, ``eta * l1``, to the total a weight is owed."""
        self.l1_total = float(getattr(self, "l1_total", 0.0)) + threshold

    def shrink_l1(self, coef, l1, proximal, eta=None):
        """The L1 part of a step, on all of ``coef`` (see :mod:`sksoftmax._penalty`).

        Parameters
        ----------
        coef : ndarray of shape (n_params, n_features)
        l1 : float
            The batch's L1 strength (``penalty.l1`` times the batch's share).
        proximal : bool
            Soft-thresholding (SAGA) rather than the cumulative penalty (SGD).
        eta : float, default=None
            The step just taken; None: the next one's.
        """
        threshold = (self.current_eta() if eta is None else eta) * l1
        if proximal:
            soft_threshold_(coef, threshold)
        else:
            self.accrue_l1(threshold)
            cumulative_l1_(coef, self.l1_state(coef), self.l1_total)

    def step(self, params, grads, n_samples, l1=0.0, proximal=False):
        """Apply one update in place; ``grads`` may be overwritten.

        The smooth step (the gradient, momentum), then the L1 part of the
        penalty on ``params[0]``, then the running average: the average is of
        the iterates as the penalty left them.

        Parameters
        ----------
        params : list of ndarray
        grads : list of ndarray
            Same shapes as ``params``.
        n_samples : int
            Samples in the batch, added to ``t``.
        l1 : float, default=0.0
            The batch's L1 strength (``penalty.l1`` times its share); 0: none.
        proximal : bool, default=False
            Apply it by soft-thresholding (SAGA) rather than cumulatively (SGD).
        """
        # The gradient buffers double as scratch space: no allocation per batch.
        eta = self.current_eta()
        if self.momentum:
            if self.velocities is None:
                self.velocities = [np.zeros_like(p) for p in params]
            for p, g, v in zip(params, grads, self.velocities, strict=True):
                v *= self.momentum
                v += g
                if self.nesterov:  # p -= eta * (g + momentum * v)
                    g *= eta
                    p -= g
                    np.multiply(v, eta * self.momentum, out=g)
                else:  # p -= eta * v
                    np.multiply(v, eta, out=g)
                p -= g
        else:
            for p, g in zip(params, grads, strict=True):
                g *= eta
                p -= g
        if l1:
            self.shrink_l1(params[0], l1, proximal, eta)
        self.t += n_samples
        if self.averaging and self.t > self.average_start:
            self.n_averaged += 1
            for a, p, g in zip(self.averages, params, grads, strict=True):
                np.subtract(p, a, out=g)  # a += (p - a) / n_averaged
                g *= 1.0 / self.n_averaged
                a += g
        elif self.averaging:
            for a, p in zip(self.averages, params, strict=True):
                a[...] = p

    def averaged(self):
        """True once the averages differ from the raw parameters."""
        return self.averaging and self.n_averaged > 0


def _f_ordered(array):
    return array.ndim > 1 and array.flags.f_contiguous and not array.flags.c_contiguous


class SAGAMemory:
    r"""The gradient memory of minibatch SAGA (Defazio, Bach and Lacoste-Julien, 2014).

    For a linear model the gradient of row ``i``'s loss is ``r_i x_i`` (and
    ``r_i`` for the intercept), with ``r_i = w_i (p_i - y_i)`` the row's
    residual, so the memory of every row's last gradient is the table of last
    residuals, ``(n_samples, n_params)``, plus their running mean gradient.
    A batch ``B`` then steps along the unbiased, variance-reduced direction

    .. math::

        \frac{1}{b} \sum_{i \in B} (r_i - \bar r_i) x_i
        + \frac{1}{n} \sum_j \bar r_j x_j + \alpha W

    with :math:`\bar r` the stored residuals, which are then replaced by the
    new ones. It costs what a plain SGD batch costs (the same two products),
    plus a pass over the weights per batch; with a constant step it converges
    to the optimum at a linear rate, where plain SGD stalls at a noise floor.

    The table is stored already divided by ``batch_size``, as the engines
    compute the residual; ``factor = batch_size / n_train`` turns a batch's sum
    of residual changes into the change of the mean gradient.

    Parameters
    ----------
    n_samples : int
        Rows of X (the table is indexed by row number).
    n_train : int
        Rows trained on (all but a validation hold-out).
    coef, intercept : ndarray of shape (n_params, n_features), (n_params,)
        Templates of the mean-gradient buffers (shape, dtype, order).
    batch_size : int
    """

    def __init__(self, n_samples, n_train, coef, intercept, batch_size):
        self.residuals = np.zeros((n_samples, coef.shape[0]), dtype=coef.dtype)
        self.mean_grad_coef = np.zeros_like(coef)
        self.mean_grad_intercept = np.zeros_like(intercept)
        self.factor = float(batch_size) / float(n_train)

    # Its mean gradient moves every weight at every step (see SGDOptimizer's).
    moves_every_weight = True

    def forget(self):
        """Empty the memory, as at the start: after going back to earlier weights,
        the residuals of the iterates left behind are no use (measured: kept, they
        made a step that had blown up blow up again)."""
        self.residuals[...] = 0
        self.mean_grad_coef[...] = 0
        self.mean_grad_intercept[...] = 0

    def direction_(self, grad_coef, grad_intercept, share=1.0):
        """Add the mean gradient to a batch's gradient of residual changes, in place,
        and fold that gradient into the mean.

        ``share`` is the batch's size over ``batch_size``: a ragged last batch
        takes that share of the mean, as it takes that share of the penalty, so
        that an epoch's steps add up to the full gradient and the optimum stays
        the fixed point (with the full mean on every batch, iris at 128 + 22
        rows settled 0.5% above its optimum).

        With ``G`` the batch's gradient, ``grad = G + share * mean`` then
        ``mean += factor * G``, no temporary array of the weights' size.
        """
        for grad, mean in (
            (grad_coef, self.mean_grad_coef),
            (grad_intercept, self.mean_grad_intercept),
        ):
            mean_part = mean * share if share != 1.0 else mean
            grad += mean_part  # G + share * mean
            mean += self.factor * (grad - mean_part)
