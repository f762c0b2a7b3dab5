"""Optional compiled epochs (numba), with the numpy engine as their reference.

:func:`dense_epoch_chunk` runs dense batches; :func:`sparse_epoch_chunk` runs
plain-SGD batches of CSR data at a cost that follows the non-zeros, without the
numpy sparse epoch's per-batch work of collecting each batch's columns (about
3x faster on text-like data); :func:`sparse_saga_epoch_chunk` and
:func:`sparse_momentum_epoch_chunk` do the same for SAGA and momentum, whose
steps move every weight, by taking a feature's missed steps just in time.

Why the dense one exists: an epoch at batch 128 is two skinny products per batch
(``128 x 784 x 10``), where OpenBLAS reaches about half of one core's peak, plus
a shuffled-row gather and some 30 numpy calls per batch. Measured on a 2-core
Xeon, 60,000 x 784 x 10, that kept the numpy engine at 3.5-3.7x the time of
reading X twice, whatever the arrangement. Here the whole batch loop is one
compiled call per chunk of batches:

* rows are read in place through ``order`` (no gathered copy), eight at a
  time, so that each weight loaded serves eight rows and the multiply-adds,
  not the loads, set the pace;
* the gradient pass reads the rows the logits pass just brought into cache;
* the softmax, residual, L2 term and optimiser update are plain loops over
  batch- or weight-sized arrays, with no temporary arrays.

Tried and dropped: software prefetch of the next batch's rows (during the
gradient pass, or a few rows ahead in the logits pass) made epochs 10-20%
slower; on this machine one core's memory reads are limited by its
outstanding-miss buffers, which prefetches compete for. Nor did a helper
thread on the other core reading the next chunk's rows ahead of the training
thread (512-4096 rows ahead: 0-8% slower), so the other core's cache is no
shortcut to this one's. Also dropped: each
batch split over both cores (``prange``), 1.5x faster on an idle machine but
up to 46x slower with the other core busy, as every batch waits at a barrier
for a descheduled thread.

Same mathematics, same order of batches and same optimiser as
:meth:`sksoftmax._engine.EpochEngine.run_epoch`; the results agree to rounding
(sums are reassociated for SIMD). ``reassoc``/``contract`` are the only
fast-math flags: ``nnan``/``ninf`` would let the compiler delete the divergence
checks.
"""

import math

import numpy as np
from numba import njit

FASTMATH = frozenset({"reassoc", "contract"})


def _jit(function):
    """``njit`` with ``FASTMATH``, cached on disk when numba finds somewhere to write.

    With a read-only package directory numba falls back to the user's cache
    directory; when that is read-only too it refuses ``cache=True`` outright,
    and we compile for this process only.
    """
    options = dict(fastmath=set(FASTMATH), boundscheck=False, nogil=True)
    try:
        return njit(cache=True, **options)(function)
    except RuntimeError:  # "cannot cache function ...: no locator available"
        return njit(cache=False, **options)(function)


# The ``schedule`` argument of :func:`dense_epoch_chunk`.
SCHEDULE_FIXED = 0  # "constant" and "adaptive": eta is the same for the whole call
SCHEDULE_OPTIMAL = 1
SCHEDULE_INVSCALING = 2

# The ``status`` returned by :func:`dense_epoch_chunk`.
STATUS_OK = 0
STATUS_LOGIT_OVERFLOW = 1
STATUS_NONFINITE_LOSS = 2


@_jit
def _logits(X, order, start, m, coef, intercept, Z):
    """``Z[:m] = X[order[start:start + m]] @ coef.T + intercept``.

    Eight rows by two classes at a time: 16 accumulators, and 10 loads per
    16 multiply-adds, so the multiply-adds rather than the loads set the pace.
    """
    n_params, n_features = coef.shape
    zero = coef.dtype.type(0)
    i = 0
    while i + 8 <= m:
        x0 = X[order[start + i + 0]]
        x1 = X[order[start + i + 1]]
        x2 = X[order[start + i + 2]]
        x3 = X[order[start + i + 3]]
        x4 = X[order[start + i + 4]]
        x5 = X[order[start + i + 5]]
        x6 = X[order[start + i + 6]]
        x7 = X[order[start + i + 7]]
        c = 0
        while c + 2 <= n_params:
            w = coef[c]
            v = coef[c + 1]
            a0 = zero
            b0 = zero
            a1 = zero
            b1 = zero
            a2 = zero
            b2 = zero
            a3 = zero
            b3 = zero
            a4 = zero
            b4 = zero
            a5 = zero
            b5 = zero
            a6 = zero
            b6 = zero
            a7 = zero
            b7 = zero
            for k in range(n_features):
                w_k = w[k]
                v_k = v[k]
                a0 += x0[k] * w_k
                b0 += x0[k] * v_k
                a1 += x1[k] * w_k
                b1 += x1[k] * v_k
                a2 += x2[k] * w_k
                b2 += x2[k] * v_k
                a3 += x3[k] * w_k
                b3 += x3[k] * v_k
                a4 += x4[k] * w_k
                b4 += x4[k] * v_k
                a5 += x5[k] * w_k
                b5 += x5[k] * v_k
                a6 += x6[k] * w_k
                b6 += x6[k] * v_k
                a7 += x7[k] * w_k
                b7 += x7[k] * v_k
            Z[i + 0, c] = a0 + intercept[c]
            Z[i + 0, c + 1] = b0 + intercept[c + 1]
            Z[i + 1, c] = a1 + intercept[c]
            Z[i + 1, c + 1] = b1 + intercept[c + 1]
            Z[i + 2, c] = a2 + intercept[c]
            Z[i + 2, c + 1] = b2 + intercept[c + 1]
            Z[i + 3, c] = a3 + intercept[c]
            Z[i + 3, c + 1] = b3 + intercept[c + 1]
            Z[i + 4, c] = a4 + intercept[c]
            Z[i + 4, c + 1] = b4 + intercept[c + 1]
            Z[i + 5, c] = a5 + intercept[c]
            Z[i + 5, c + 1] = b5 + intercept[c + 1]
            Z[i + 6, c] = a6 + intercept[c]
            Z[i + 6, c + 1] = b6 + intercept[c + 1]
            Z[i + 7, c] = a7 + intercept[c]
            Z[i + 7, c + 1] = b7 + intercept[c + 1]
            c += 2
        if c < n_params:
            w = coef[c]
            a0 = zero
            a1 = zero
            a2 = zero
            a3 = zero
            a4 = zero
            a5 = zero
            a6 = zero
            a7 = zero
            for k in range(n_features):
                w_k = w[k]
                a0 += x0[k] * w_k
                a1 += x1[k] * w_k
                a2 += x2[k] * w_k
                a3 += x3[k] * w_k
                a4 += x4[k] * w_k
                a5 += x5[k] * w_k
                a6 += x6[k] * w_k
                a7 += x7[k] * w_k
            Z[i + 0, c] = a0 + intercept[c]
            Z[i + 1, c] = a1 + intercept[c]
            Z[i + 2, c] = a2 + intercept[c]
            Z[i + 3, c] = a3 + intercept[c]
            Z[i + 4, c] = a4 + intercept[c]
            Z[i + 5, c] = a5 + intercept[c]
            Z[i + 6, c] = a6 + intercept[c]
            Z[i + 7, c] = a7 + intercept[c]
        i += 8
    while i < m:
        x0 = X[order[start + i]]
        for c in range(n_params):
            w = coef[c]
            a0 = zero
            for k in range(n_features):
                a0 += x0[k] * w[k]
            Z[i, c] = a0 + intercept[c]
        i += 1


@_jit
def _residual(Z, m, y, order, start, weights, scale, max_logit):
    """Turn ``Z[:m]`` into ``scale * w_i * (P - Y)`` in place.

    Returns ``(sum_i w_i * CE_i, status)``; ``status`` is not OK when a logit is
    past ``max_logit`` (or NaN), and then ``Z`` is left part-way, or when the
    loss is not finite.
    """
    n_params = Z.shape[1]
    loss_sum = 0.0
    for i in range(m):
        row = order[start + i]
        for c in range(n_params):
            z = Z[i, c]
            if not (z < max_logit and z > -max_logit):
                return loss_sum, STATUS_LOGIT_OVERFLOW
        target = y[row]
        w = 1.0 if weights.shape[0] == 0 else float(weights[row])
        if n_params == 1:
            z = float(Z[i, 0])
            # log(1 + exp(z)) - y z and sigmoid(z) - y, both without overflow
            e = math.exp(-abs(z))
            ce = max(z, 0.0) + math.log1p(e) - (z if target == 1 else 0.0)
            p = 1.0 / (1.0 + e) if z >= 0.0 else e / (1.0 + e)
            Z[i, 0] = (p - target) * (w * scale)
        else:
            z_max = float(Z[i, 0])
            for c in range(1, n_params):
                z_max = max(z_max, float(Z[i, c]))
            true_logit = float(Z[i, target]) - z_max
            total = 0.0
            for c in range(n_params):
                e = math.exp(float(Z[i, c]) - z_max)
                Z[i, c] = e
                total += e
            ce = math.log(total) - true_logit
            inverse = 1.0 / total
            for c in range(n_params):
                Z[i, c] = Z[i, c] * inverse * (w * scale)
            Z[i, target] -= w * scale
        loss_sum += w * ce
    if not math.isfinite(loss_sum):
        return loss_sum, STATUS_NONFINITE_LOSS
    return loss_sum, STATUS_OK


@_jit
def _gradient(X, order, start, m, R, grad_coef):
    """``grad_coef = R[:m].T @ X[order[start:start + m]]``.

    Eight rows by two classes at a time, as :func:`_logits`; the rows were
    just read by :func:`_logits` and are still in cache.
    """
    n_params, n_features = grad_coef.shape
    grad_coef[...] = 0
    i = 0
    while i + 8 <= m:
        x0 = X[order[start + i + 0]]
        x1 = X[order[start + i + 1]]
        x2 = X[order[start + i + 2]]
        x3 = X[order[start + i + 3]]
        x4 = X[order[start + i + 4]]
        x5 = X[order[start + i + 5]]
        x6 = X[order[start + i + 6]]
        x7 = X[order[start + i + 7]]
        c = 0
        while c + 2 <= n_params:
            p0 = R[i + 0, c]
            q0 = R[i + 0, c + 1]
            p1 = R[i + 1, c]
            q1 = R[i + 1, c + 1]
            p2 = R[i + 2, c]
            q2 = R[i + 2, c + 1]
            p3 = R[i + 3, c]
            q3 = R[i + 3, c + 1]
            p4 = R[i + 4, c]
            q4 = R[i + 4, c + 1]
            p5 = R[i + 5, c]
            q5 = R[i + 5, c + 1]
            p6 = R[i + 6, c]
            q6 = R[i + 6, c + 1]
            p7 = R[i + 7, c]
            q7 = R[i + 7, c + 1]
            g = grad_coef[c]
            h = grad_coef[c + 1]
            for k in range(n_features):
                g[k] += (
                    p0 * x0[k] + p1 * x1[k] + p2 * x2[k] + p3 * x3[k]
                    + p4 * x4[k] + p5 * x5[k] + p6 * x6[k] + p7 * x7[k]
                )
                h[k] += (
                    q0 * x0[k] + q1 * x1[k] + q2 * x2[k] + q3 * x3[k]
                    + q4 * x4[k] + q5 * x5[k] + q6 * x6[k] + q7 * x7[k]
                )
            c += 2
        if c < n_params:
            p0 = R[i + 0, c]
            p1 = R[i + 1, c]
            p2 = R[i + 2, c]
            p3 = R[i + 3, c]
            p4 = R[i + 4, c]
            p5 = R[i + 5, c]
            p6 = R[i + 6, c]
            p7 = R[i + 7, c]
            g = grad_coef[c]
            for k in range(n_features):
                g[k] += (
                    p0 * x0[k] + p1 * x1[k] + p2 * x2[k] + p3 * x3[k]
                    + p4 * x4[k] + p5 * x5[k] + p6 * x6[k] + p7 * x7[k]
                )
        i += 8
    while i < m:
        x0 = X[order[start + i]]
        for c in range(n_params):
            p0 = R[i, c]
            g = grad_coef[c]
            for k in range(n_features):
                g[k] += p0 * x0[k]
        i += 1


@_jit
def _sgd_update(param, g, penalty, velocity, eta, momentum, nesterov):
    """:meth:`SGDOptimizer.step`'s smooth step for one flattened parameter, gradient
    ``g + penalty * param``."""
    # One simple loop per case, each of which the compiler vectorises.
    if momentum == 0.0:
        for j in range(param.shape[0]):
            param[j] -= eta * (g[j] + penalty * param[j])
    else:
        for j in range(param.shape[0]):
            g_j = g[j] + penalty * param[j]
            v = momentum * velocity[j] + g_j
            velocity[j] = v
            if nesterov:
                param[j] -= eta * (g_j + momentum * v)
            else:
                param[j] -= eta * v


@_jit
def _average_update(param, average, average_from):
    """:meth:`SGDOptimizer.step`'s running average, after the penalty's L1 part.

    ``average_from`` is 0 for no averaging, -1 to copy the parameter into the
    average (averaging has not started yet) and ``n >= 1`` to fold it in as the
    ``n``-th term.
    """
    if average_from < 0:
        average[...] = param
    elif average_from > 0:
        for j in range(param.shape[0]):
            average[j] += (param[j] - average[j]) * (1.0 / average_from)


@_jit
def _soft_threshold(param, threshold):
    """:func:`sksoftmax._penalty.soft_threshold_` (the L1 prox, under SAGA)."""
    zero = param.dtype.type(0)
    for j in range(param.shape[0]):
        w = param[j]
        if w > threshold:
            param[j] = w - threshold
        elif w < -threshold:
            param[j] = w + threshold
        else:
            param[j] = zero


@_jit
def _cumulative_l1(weight, applied, k, total, scale):
    """:func:`sksoftmax._penalty.cumulative_l1_` for one weight; returns the new stored weight.

    ``scale * weight`` is the true weight; ``applied[k]`` is its ``q``, updated.
    """
    true = float(weight) * scale
    if true > 0.0:
        moved = max(0.0, true - (total + applied[k]))
    elif true < 0.0:
        moved = min(0.0, true + (total - applied[k]))
    else:
        return float(weight)
    applied[k] += moved - true
    return moved / scale


@_jit
def _centred_intercept(coef, intercept, offset, effective_intercept):
    """``effective_intercept = intercept - coef @ offset``: the logits of centred rows."""
    for c in range(coef.shape[0]):
        w = coef[c]
        total = 0.0
        for k in range(coef.shape[1]):
            total += w[k] * offset[k]
        effective_intercept[c] = intercept[c] - total


@_jit
def _swap_residuals(Z, m, order, start, residual_table):
    """Store the batch's residuals ``Z[:m]`` in the table; leave their change in ``Z``."""
    for i in range(m):
        stored = residual_table[order[start + i]]
        for c in range(Z.shape[1]):
            new = Z[i, c]
            Z[i, c] = new - stored[c]
            stored[c] = new


@_jit
def _saga_direction(grad, mean, factor, share):
    """:meth:`SAGAMemory.direction_` for one flattened parameter."""
    for j in range(grad.shape[0]):
        g = grad[j]
        grad[j] = g + share * mean[j]
        mean[j] += factor * g


@_jit
def _step_size(schedule, t, eta_fixed, eta0, power_t, schedule_alpha, t0):
    """:meth:`SGDOptimizer.current_eta` after ``t`` samples, for both compiled epochs."""
    step = t + 1
    if schedule == SCHEDULE_OPTIMAL:
        return 1.0 / (schedule_alpha * (t0 + (step - 1)))
    if schedule == SCHEDULE_INVSCALING:
        return eta0 / step**power_t
    return eta_fixed


@_jit
def _batch_gradient(X, order, first, m, Z, grad_coef, grad_intercept, offset, fit_intercept):
    """The gradient of a dense batch from its residual ``Z``, centred by ``offset``."""
    n_params, n_features = grad_coef.shape
    _gradient(X, order, first, m, Z, grad_coef)
    for c in range(n_params):
        total = 0.0
        if fit_intercept:
            for i in range(m):
                total += Z[i, c]
        grad_intercept[c] = total
    if offset.shape[0] > 0:
        for c in range(n_params):
            g = grad_coef[c]
            for k in range(n_features):
                g[k] -= grad_intercept[c] * offset[k]


@_jit
def _dense_l1(coef_flat, threshold, proximal, l1_applied, l1_total):
    """The L1 part of a dense step on every weight: the prox, or the cumulative penalty."""
    if proximal:
        _soft_threshold(coef_flat, threshold)
        return
    l1_total[0] += threshold
    total = l1_total[0]
    for j in range(coef_flat.shape[0]):
        coef_flat[j] = _cumulative_l1(coef_flat[j], l1_applied, j, total, 1.0)


@_jit
def _average_position(averaging, t, average_start, n_averaged):
    """``(average_from, n_averaged)`` for :func:`_average_update` after a step to ``t``."""
    if not averaging:
        return 0, n_averaged
    if t > average_start:
        return n_averaged + 1, n_averaged + 1
    return -1, n_averaged


@_jit
def dense_epoch_chunk(
    X,
    y,
    weights,
    order,
    start,
    stop,
    batch_size,
    coef,
    intercept,
    velocity_coef,
    velocity_intercept,
    average_coef,
    average_intercept,
    offset,
    effective_intercept,
    residual_table,
    mean_grad_coef,
    mean_grad_intercept,
    saga_factor,
    Z,
    grad_coef,
    grad_intercept,
    l1_applied,
    l1_total,
    counters,
    schedule,
    eta_fixed,
    eta0,
    power_t,
    alpha,
    schedule_alpha,
    t0,
    l1,
    l1_proximal,
    momentum,
    nesterov,
    averaging,
    average_start,
    fit_intercept,
    max_logit,
):
    """Batches ``order[start:stop]`` of one epoch; :meth:`EpochEngine.run_epoch` in one call.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features), C-contiguous
    y : ndarray of shape (n_samples,)
        Class indices.
    weights : ndarray of shape (n_samples,) or (0,)
        Sample weights over their mean; empty means ones.
    order : ndarray of shape (n_rows,)
        Rows to visit; ``start`` is a multiple of ``batch_size``.
    coef, intercept : ndarray of shape (n_params, n_features), (n_params,)
        Updated in place.
    velocity_coef, velocity_intercept, average_coef, average_intercept : ndarray
        Optimiser buffers, same shapes as ``coef``, ``intercept``; read only
        when ``momentum`` / ``averaging`` is on.
    offset : ndarray of shape (n_features,) or (0,)
        Train on the implicitly centred rows ``x - offset`` (empty: not centred),
        as :meth:`EpochEngine.run_epoch`; ``effective_intercept`` (n_params,) is
        scratch for the intercept of the uncentred rows.
    residual_table, mean_grad_coef, mean_grad_intercept : ndarray
        :class:`sksoftmax._optim.SAGAMemory`'s arrays, updated in place; an
        empty table means plain SGD. ``saga_factor`` is its ``factor``.
    Z : ndarray of shape (batch_size, n_params)
    grad_coef, grad_intercept : ndarray
        Scratch, same shapes as ``coef``, ``intercept``.
    l1_applied, l1_total : ndarray of float64
        The cumulative L1 penalty's ``q`` (flat, coef's size; empty without it)
        and ``[u]``, updated in place (see :mod:`sksoftmax._penalty`).
    schedule : int
        ``SCHEDULE_FIXED`` (``eta_fixed``), ``SCHEDULE_OPTIMAL`` or
        ``SCHEDULE_INVSCALING``, as :meth:`SGDOptimizer.current_eta`, whose
        ``eta0``, ``power_t``, ``alpha`` (``schedule_alpha`` here) and ``t0``
        follow; ``alpha`` is the penalty's L2 strength, ``l1`` its L1 strength,
        applied by soft-thresholding when ``l1_proximal`` (SAGA), else cumulatively.
    counters : ndarray of shape (2,), int64
        The optimiser's ``t`` and ``n_averaged``, updated after every batch.

    Returns
    -------
    loss_sum : float
        ``sum_i w_i * CE_i`` over the visited rows, before each batch's update.
    n_seen : int
    status : int
        ``STATUS_OK``, or why the batch at ``t`` was not applied.
    """
    n_params, n_features = coef.shape
    scale = 1.0 / batch_size
    coef_flat = coef.reshape(-1)
    velocity_flat = velocity_coef.reshape(-1)
    average_flat = average_coef.reshape(-1)
    t = counters[0]
    n_averaged = counters[1]
    loss_sum = 0.0
    n_seen = 0
    centred = offset.shape[0] > 0
    saga = residual_table.shape[0] > 0
    mean_flat = mean_grad_coef.reshape(-1)
    for first in range(start, stop, batch_size):
        m = min(batch_size, stop - first)
        if centred:
            _centred_intercept(coef, intercept, offset, effective_intercept)
            _logits(X, order, first, m, coef, effective_intercept, Z)
        else:
            _logits(X, order, first, m, coef, intercept, Z)
        batch_loss, status = _residual(Z, m, y, order, first, weights, scale, max_logit)
        if status != STATUS_OK:
            return loss_sum, n_seen, status
        loss_sum += batch_loss
        if saga:
            _swap_residuals(Z, m, order, first, residual_table)
        _batch_gradient(X, order, first, m, Z, grad_coef, grad_intercept, offset, fit_intercept)
        share = m / batch_size
        if saga:
            _saga_direction(grad_coef.reshape(-1), mean_flat, saga_factor, share)
            _saga_direction(grad_intercept, mean_grad_intercept, saga_factor, share)

        eta = _step_size(schedule, t, eta_fixed, eta0, power_t, schedule_alpha, t0)
        t += m
        average_from, n_averaged = _average_position(averaging, t, average_start, n_averaged)
        _sgd_update(
            coef_flat, grad_coef.reshape(-1), alpha * share, velocity_flat, eta, momentum, nesterov
        )
        _sgd_update(intercept, grad_intercept, 0.0, velocity_intercept, eta, momentum, nesterov)
        if l1 > 0.0:
            _dense_l1(coef_flat, eta * l1 * share, l1_proximal, l1_applied, l1_total)
        _average_update(coef_flat, average_flat, average_from)
        _average_update(intercept, average_intercept, average_from)
        n_seen += m
        counters[0] = t
        counters[1] = n_averaged
    return loss_sum, n_seen, STATUS_OK


@_jit
def sparse_epoch_chunk(
    data,
    indices,
    indptr,
    y,
    weights,
    order,
    start,
    stop,
    batch_size,
    weights_by_feature,
    shrinkage,
    offset,
    pending,
    offset_dot,
    offset_sq_norm,
    intercept,
    Z,
    grad_intercept,
    l1_applied,
    l1_total,
    average_sums,
    average_state,
    pending_mean,
    average_intercept,
    counters,
    schedule,
    eta_fixed,
    eta0,
    power_t,
    alpha,
    schedule_alpha,
    t0,
    l1,
    averaging,
    average_start,
    smallest_scale,
    fit_intercept,
    max_logit,
):
    """Plain-SGD batches ``order[start:stop]`` of CSR data, at a cost that follows the non-zeros.

    :meth:`EpochEngine._run_sparse_epoch` in one call: the weights live
    feature-major and the L2 shrinkage of all of them is the scalar
    ``shrinkage[0]`` (true weights = ``shrinkage[0] * weights_by_feature``), so a
    batch touches only the weights of its non-zero features. The batch's
    logits are all computed before its update, which is then scattered row by
    row: the same step as the batch gradient, without collecting the batch's
    distinct columns first.

    Parameters
    ----------
    data, indices, indptr : ndarray
        The CSR arrays of X, shape (n_samples, n_features).
    weights_by_feature : ndarray of shape (n_features, n_params)
        Updated in place.
    shrinkage : ndarray of shape (1,), float64
        The pending L2 scale, read and written.
    offset, pending, offset_dot : ndarray
        Implicit centring, as ``sksoftmax._engine._LazyCentring``: true weights
        ``shrinkage * weights_by_feature - outer(offset, pending)``; the last two
        (float64, ``(n_params,)``) read and written. An empty ``offset``: not
        centred. ``offset_sq_norm`` is ``offset @ offset``.
    intercept : ndarray of shape (n_params,)
    Z : ndarray of shape (batch_size, n_params)
    grad_intercept : ndarray of shape (n_params,)
        Scratch.
    l1_applied : ndarray of shape (n_features, n_params), float64
        The cumulative L1 penalty's ``q`` (empty without L1), applied after each
        batch's update to the features of its rows only; ``l1_total`` ``[u]``.
        Needs ``offset`` empty.
    average_sums, average_state, pending_mean, average_intercept : ndarray
        The running average kept lazily, as ``sksoftmax._engine._LazyAverage``
        (its ``sums``, ``[a, b]``, ``pending_mean`` and the intercept's average),
        updated in place when ``averaging``; from ``t > average_start`` on. The pending
        scale is folded into the weights below ``smallest_scale``.
    counters : ndarray of shape (2,), int64
        The optimiser's ``t`` and ``n_averaged``, updated after every batch.

    The other parameters are those of :func:`dense_epoch_chunk`.

    Returns
    -------
    loss_sum : float
    n_seen : int
    status : int
    """
    scale = 1.0 / batch_size
    shrink = shrinkage[0]
    centred = offset.shape[0] > 0
    # Each row's x . offset, from the logits pass: offset_dot then follows the
    # update in O(batch x classes), not O(non-zeros x classes) (which doubled
    # the update's work, measured 1.8x on a streamed epoch).
    x_dot_offsets = np.zeros(batch_size)
    # The batch (its first row) that last took each feature's L1 step.
    marks = np.full(weights_by_feature.shape[0] if l1 > 0.0 else 0, -1, dtype=np.int64)
    # Plain SGD: no lagged SAGA steps for _sparse_logits to catch up.
    no_means = np.empty((0, 0), dtype=weights_by_feature.dtype)
    no_drift, no_steps = np.zeros(1), np.empty(0, dtype=np.int64)
    t = counters[0]
    n_averaged = counters[1]
    loss_sum = 0.0
    n_seen = 0
    for first in range(start, stop, batch_size):
        m = min(batch_size, stop - first)
        _sparse_logits(
            data, indices, indptr, order, first, m, weights_by_feature, shrink, intercept,
            offset, pending, offset_dot, offset_sq_norm, Z, x_dot_offsets,
            no_means, no_drift, no_steps, 0,
        )  # fmt: skip
        batch_loss, status = _residual(Z, m, y, order, first, weights, scale, max_logit)
        if status != STATUS_OK:
            shrinkage[0] = shrink
            return loss_sum, n_seen, status
        loss_sum += batch_loss

        eta = _step_size(schedule, t, eta_fixed, eta0, power_t, schedule_alpha, t0)
        decay = 1.0 - eta * alpha * m / batch_size
        if decay <= 0.5:  # too large a shrinkage for the scalar: apply it to every weight
            _rescale(weights_by_feature, offset_dot, shrink * decay, average_sums, average_state,
                     averaging)  # fmt: skip
            shrink = 1.0
        else:
            shrink *= decay
        tracks = averaging and n_averaged >= 1 and t + m > average_start
        _sparse_scatter(
            data, indices, indptr, order, first, m, weights_by_feature, eta / shrink, Z,
            centred, x_dot_offsets, offset_dot, tracks, average_sums, average_state[0],
        )  # fmt: skip
        if l1 > 0.0:
            l1_total[0] += eta * l1 * m / batch_size
            _sparse_l1(
                indices, indptr, order, first, m, weights_by_feature, l1_applied, l1_total[0],
                shrink, tracks, average_sums, average_state[0], marks,
            )  # fmt: skip
        if fit_intercept:
            _sparse_intercept_step(Z, m, intercept, grad_intercept, eta, pending, decay, centred)
        t += m
        if averaging:
            copying = t <= average_start
            if not copying:
                n_averaged += 1
            _sparse_average_step(
                copying, n_averaged, average_sums, average_state, shrink, pending, pending_mean,
                intercept, average_intercept,
            )  # fmt: skip
        if shrink < smallest_scale:
            _rescale(weights_by_feature, offset_dot, shrink, average_sums, average_state,
                     averaging)  # fmt: skip
            shrink = 1.0
        n_seen += m
        counters[0] = t
        counters[1] = n_averaged
        shrinkage[0] = shrink
    return loss_sum, n_seen, STATUS_OK


@_jit
def _sparse_logits(
    data, indices, indptr, order, first, m, weights_by_feature, shrink, intercept,
    offset, pending, offset_dot, offset_sq_norm, Z, x_dot_offsets,
    mean_by_feature, drift, last_step, k,
):  # fmt: skip
    """The logits of a batch of CSR rows, ``Z[:m]``, from the lazily scaled and
    centred weights; each row's ``x . offset`` into ``x_dot_offsets``.

    For SAGA (``last_step`` not empty) each feature is first brought up to date
    with step ``k``, its lagged mean-gradient steps (see
    :func:`sparse_saga_epoch_chunk`), as it is read: one pass over the non-zeros.
    """
    n_params = weights_by_feature.shape[1]
    zero = weights_by_feature.dtype.type(0)
    centred = offset.shape[0] > 0
    lagged = last_step.shape[0] > 0
    for i in range(m):
        row = order[first + i]
        for c in range(n_params):
            Z[i, c] = zero
        x_dot_offset = 0.0
        for p in range(indptr[row], indptr[row + 1]):
            j = indices[p]
            value = data[p]
            w = weights_by_feature[j]
            if lagged and last_step[j] < k:
                lag = drift[k] - drift[last_step[j]]
                mean = mean_by_feature[j]
                for c in range(n_params):
                    w[c] -= lag * mean[c]
                last_step[j] = k
            for c in range(n_params):
                Z[i, c] += value * w[c]
            if centred:
                x_dot_offset += value * offset[j]
        for c in range(n_params):
            Z[i, c] = Z[i, c] * shrink + intercept[c]
        if centred:
            x_dot_offsets[i] = x_dot_offset
            for c in range(n_params):
                Z[i, c] -= (x_dot_offset - offset_sq_norm) * pending[c] + shrink * offset_dot[c]


@_jit
def _sparse_scatter(
    data, indices, indptr, order, first, m, weights_by_feature, data_step, Z,
    centred, x_dot_offsets, offset_dot, tracks, average_sums, average_a,
):  # fmt: skip
    """The batch's update, scattered row by row onto its features' stored weights,
    followed in ``offset_dot`` and (``tracks``) in the average's sums."""
    n_params = weights_by_feature.shape[1]
    for i in range(m):
        row = order[first + i]
        for p in range(indptr[row], indptr[row + 1]):
            # In the weights' dtype: a float64 factor would make the float32
            # update convert every element twice.
            factor = weights_by_feature.dtype.type(data_step * data[p])
            w = weights_by_feature[indices[p]]
            for c in range(n_params):
                w[c] -= factor * Z[i, c]
    if tracks:  # a loop of its own: the plain update above stays as it was
        for i in range(m):
            row = order[first + i]
            for p in range(indptr[row], indptr[row + 1]):
                factor = weights_by_feature.dtype.type(data_step * data[p])
                sums = average_sums[indices[p]]
                for c in range(n_params):
                    sums[c] += average_a * (factor * Z[i, c])
    if centred:
        for i in range(m):
            moved = data_step * x_dot_offsets[i]
            for c in range(n_params):
                offset_dot[c] -= moved * Z[i, c]


@_jit
def _sparse_l1(
    indices, indptr, order, first, m, weights_by_feature, l1_applied, total, shrink,
    tracks, average_sums, average_a, marks,
):  # fmt: skip
    """The cumulative L1 penalty on the batch's features, after the batch's update.

    Once per feature (``marks[j] == first`` once done; a second application
    would change nothing, but cost as much), and without branches on the
    weight's sign that keep the loop over classes from vectorising: measured
    on 20,000 x 50,000 CSR, 20 classes, the elastic-net epoch took 2.8-3.1x
    the L2 epoch with the scalar rule applied at every non-zero. Tried and
    dropped: the step taken inside the update's scatter, at each feature's last
    non-zero in the batch (found by a pass over the batch's column indices),
    while its weights are in cache. On 100,000 x 50,000 CSR it was slower, not
    faster: 2.6x the L2 epoch against 2.0x (float64), 3.9x against 2.8x
    (float32), alternating processes; the branch in the scatter's loop costs
    more than the second pass.
    """
    n_params = weights_by_feature.shape[1]
    inverse = 1.0 / shrink
    for i in range(m):
        row = order[first + i]
        for p in range(indptr[row], indptr[row + 1]):
            j = indices[p]
            if marks[j] == first:
                continue
            marks[j] = first
            w = weights_by_feature[j]
            q = l1_applied[j]
            for c in range(n_params):
                true = w[c] * shrink
                positive = max(0.0, true - (total + q[c]))
                negative = min(0.0, true + (total - q[c]))
                moved = positive if true > 0.0 else (negative if true < 0.0 else 0.0)
                q[c] += moved - true
                new = moved * inverse
                if tracks:
                    average_sums[j, c] -= average_a * (new - float(w[c]))
                w[c] = new


@_jit
def _sparse_intercept_step(Z, m, intercept, grad_intercept, eta, pending, decay, centred):
    """The intercept's step, and the centring's pending rank-one term."""
    for c in range(intercept.shape[0]):
        total = 0.0
        for i in range(m):
            total += Z[i, c]
        grad_intercept[c] = total
        intercept[c] -= eta * total
        if centred:
            pending[c] = pending[c] * decay - eta * total


@_jit
def _rescale(weights_by_feature, offset_dot, factor, average_sums, average_state, averaging):
    """Fold a factor of the pending scale into the stored weights (and offset_dot),
    the average settled first (``sksoftmax._engine._LazyAverage.rescale``)."""
    if averaging:
        a, b = average_state[0], average_state[1]
        for j in range(weights_by_feature.shape[0]):
            for c in range(weights_by_feature.shape[1]):
                average_sums[j, c] = (average_sums[j, c] + a * weights_by_feature[j, c]) / b
        average_state[0] = 0.0
        average_state[1] = 1.0
        average_state[2] = 0.0  # the sums hold the average now: not copying
    weights_by_feature *= factor
    for c in range(offset_dot.shape[0]):
        offset_dot[c] *= factor


@_jit
def _sparse_average_step(
    copying, n_averaged, average_sums, average_state, shrink, pending, pending_mean, intercept,
    average_intercept,
):  # fmt: skip
    """``sksoftmax._engine._LazyAverage.after_step``: fold the step's iterate in."""
    if copying or n_averaged == 1:  # the iterate itself
        if copying and average_state[2] == 0.0:  # settled by a rescaling, or a raised average_start
            average_sums[...] = 0.0
        average_state[0] = shrink
        average_state[1] = 1.0
        average_state[2] = 1.0 if copying else 0.0
        for c in range(pending_mean.shape[0]):
            pending_mean[c] = pending[c]
        for c in range(intercept.shape[0]):
            average_intercept[c] = intercept[c]
        return
    mu = 1.0 / n_averaged
    average_state[1] /= 1.0 - mu
    average_state[0] += mu * shrink * average_state[1]
    average_state[2] = 0.0
    for c in range(pending_mean.shape[0]):
        pending_mean[c] += mu * (pending[c] - pending_mean[c])
    for c in range(intercept.shape[0]):
        average_intercept[c] += (intercept[c] - average_intercept[c]) * mu


@_jit
def csr_logits(data, indices, indptr, start, stop, weights_by_feature, intercept, Z):
    """``Z[:stop - start] = X[start:stop] @ weights_by_feature + intercept`` for CSR X.

    The fit's exact objective after each epoch, on sparse X: scipy's product
    took 0.08 s for 2 M non-zeros x 20 classes, as long as half the epoch.
    """
    n_params = weights_by_feature.shape[1]
    for i in range(start, stop):
        row = Z[i - start]
        for c in range(n_params):
            row[c] = intercept[c]
        for p in range(indptr[i], indptr[i + 1]):
            value = data[p]
            w = weights_by_feature[indices[p]]
            for c in range(n_params):
                row[c] += value * w[c]


@_jit
def transpose_scaled(source, target, scale):
    """``target[...] = scale * source.T``, in cache-sized tiles (numpy's strided
    write of a wide transpose is ~3x slower)."""
    n_rows, n_cols = source.shape
    tile = 64
    for row0 in range(0, n_rows, tile):
        for col0 in range(0, n_cols, tile):
            for i in range(row0, min(row0 + tile, n_rows)):
                for j in range(col0, min(col0 + tile, n_cols)):
                    target[j, i] = source[i, j] * scale


@_jit
def sparse_saga_epoch_chunk(
    data, indices, indptr, y, weights, order, start, stop, batch_size,
    weights_by_feature, shrinkage, offset, pending, offset_dot, offset_sq_norm,
    intercept, Z, residual_table, mean_by_feature, mean_intercept, saga_factor,
    mean_offset_dot, drift, last_step, step_state, counters,
    schedule, eta_fixed, eta0, power_t, alpha, schedule_alpha, t0, fit_intercept, max_logit,
):  # fmt: skip
    """SAGA batches ``order[start:stop]`` of CSR data, at a cost that follows the non-zeros.

    :meth:`EpochEngine.run_epoch` with a ``saga`` memory on CSR, without the
    dense update of every weight per batch. SAGA's direction is the batch's
    gradient of residual changes (on its own features) plus the mean gradient
    (on all of them); a feature outside the batch only moves by its mean
    gradient, which stays the same until a batch touches the feature. So its
    steps are taken just in time (the lagged updates of scikit-learn's sag):
    ``drift[k]`` is the sum, over the epoch's first ``k`` steps, of each
    step's ``eta * share / shrinkage``, and a feature last brought up to date
    at step ``last_step[j]`` moves by ``-(drift[k] - drift[last_step[j]]) *
    mean_by_feature[j]`` before its weights are read. ``offset_dot`` (the
    logits' ``offset . weights``) follows every step at once through
    ``mean_offset_dot = offset @ mean_by_feature``.

    Tried and dropped: each feature's weights and mean side by side in one
    array (rows ``[w_j, mean_j]``), as the lagged steps and the update read and
    write both. On 100,000 x 50,000 CSR, 20 classes, a two-epoch fit took 1.25x
    as long (median of 7 pairs in one process): the logits pass, which reads
    the weights alone, then draws twice the cache lines per feature.

    The mean gradient is held here without the centring's rank-one part:
    ``mean_by_feature = mean_grad_coef.T + outer(offset, mean_intercept)``, whose
    rank-one part joins the centring's pending term, as the batch's does. Plain
    SGD otherwise (no momentum, no averaging, no L1 part: those take the numpy
    epoch). :func:`saga_catch_up` brings every feature up to date: call it
    before the weights are read outside, and it is called before a rescaling.

    Parameters
    ----------
    residual_table, mean_intercept, saga_factor : ndarray, ndarray, float
        :class:`sksoftmax._optim.SAGAMemory`'s table, intercept mean and factor.
    mean_by_feature : ndarray of shape (n_features, n_params)
        The mean gradient of the weights, as above; updated in place.
    mean_offset_dot : ndarray of shape (n_params,), float64
        ``offset @ mean_by_feature``, kept up to date (zeros when not centred).
    drift : ndarray of shape (n_batches + 1,), float64
        The cumulative sums above, for this epoch; ``drift[0] = 0``.
    last_step : ndarray of shape (n_features,), int64
        The step each feature's weights are up to date with (0 at the epoch's start).
    step_state : ndarray of shape (1,), int64
        The epoch's step count so far.

    The other parameters are those of :func:`sparse_epoch_chunk`.

    Returns
    -------
    loss_sum : float
    n_seen : int
    status : int
    """
    n_params = weights_by_feature.shape[1]
    scale = 1.0 / batch_size
    shrink = shrinkage[0]
    centred = offset.shape[0] > 0
    x_dot_offsets = np.zeros(batch_size)
    no_average = np.zeros(3)  # _rescale's average state, unused: no averaging here
    t = counters[0]
    k = step_state[0]
    loss_sum = 0.0
    n_seen = 0
    for first in range(start, stop, batch_size):
        m = min(batch_size, stop - first)
        _sparse_logits(
            data, indices, indptr, order, first, m, weights_by_feature, shrink, intercept,
            offset, pending, offset_dot, offset_sq_norm, Z, x_dot_offsets,
            mean_by_feature, drift, last_step, k,
        )  # fmt: skip
        batch_loss, status = _residual(Z, m, y, order, first, weights, scale, max_logit)
        if status != STATUS_OK:
            shrinkage[0] = shrink
            step_state[0] = k
            return loss_sum, n_seen, status
        loss_sum += batch_loss
        _swap_residuals(Z, m, order, first, residual_table)

        eta = _step_size(schedule, t, eta_fixed, eta0, power_t, schedule_alpha, t0)
        share = m / batch_size
        decay = 1.0 - eta * alpha * share
        if decay <= 0.5 or shrink * decay < 1e-6:
            # Fold the scale into the weights: every feature up to date first, as
            # the drift of the features left behind is in the old scale's units.
            saga_catch_up(weights_by_feature, mean_by_feature, drift, last_step, k)
            _rescale(weights_by_feature, offset_dot, shrink * decay, mean_by_feature,
                     no_average, False)  # fmt: skip
            shrink = 1.0
        else:
            shrink *= decay
        mean_step = eta * share / shrink
        for c in range(offset_dot.shape[0]):  # empty when not centred
            offset_dot[c] -= mean_step * mean_offset_dot[c]
        _saga_update(
            data, indices, indptr, order, first, m, weights_by_feature, Z, eta / shrink,
            mean_by_feature, mean_step, last_step, k, saga_factor, centred,
            x_dot_offsets, offset_dot, mean_offset_dot,
        )  # fmt: skip
        if fit_intercept:
            for c in range(n_params):
                change = 0.0
                for i in range(m):
                    change += Z[i, c]
                direction = change + share * mean_intercept[c]
                mean_intercept[c] += saga_factor * change
                intercept[c] -= eta * direction
                if centred:
                    pending[c] = pending[c] * decay - eta * direction
        drift[k + 1] = drift[k] + mean_step
        k += 1
        t += m
        n_seen += m
        counters[0] = t
        shrinkage[0] = shrink
        step_state[0] = k
    return loss_sum, n_seen, STATUS_OK


@_jit
def _saga_update(
    data, indices, indptr, order, first, m, weights_by_feature, Z, data_step,
    mean_by_feature, mean_step, last_step, k, saga_factor, centred,
    x_dot_offsets, offset_dot, mean_offset_dot,
):  # fmt: skip
    """A SAGA batch's update of its own features, in one pass over its non-zeros.

    At a feature's first non-zero in the batch, step ``k``'s mean-gradient part
    (with the mean before the batch changes it; the other features take it
    just in time); then at every non-zero the scattered gradient of the
    residual changes ``Z``, and its share ``saga_factor`` folded into the mean.
    ``offset_dot`` and ``mean_offset_dot`` follow.
    """
    n_params = weights_by_feature.shape[1]
    for i in range(m):
        row = order[first + i]
        for p in range(indptr[row], indptr[row + 1]):
            j = indices[p]
            w = weights_by_feature[j]
            mean = mean_by_feature[j]
            if last_step[j] == k:
                for c in range(n_params):
                    w[c] -= mean_step * mean[c]
                last_step[j] = k + 1
            # In the weights' dtype: a float64 factor would make the float32
            # update convert every element twice.
            factor = weights_by_feature.dtype.type(data_step * data[p])
            folded = saga_factor * data[p]
            for c in range(n_params):
                w[c] -= factor * Z[i, c]
                mean[c] += folded * Z[i, c]
        if centred:
            # Per row, from the logits pass's x . offset: the mean's offset
            # product moves by saga_factor * (x . offset) * Z[i], O(classes) a
            # row, where a term per non-zero was a third pass over the classes
            # at every non-zero (100,000 x 50,000 CSR, 20 classes: an epoch with
            # its objective 1.82 -> 1.70 s, median of 5 pairs in one process).
            moved = data_step * x_dot_offsets[i]
            folded_row = saga_factor * x_dot_offsets[i]
            for c in range(n_params):
                offset_dot[c] -= moved * Z[i, c]
                mean_offset_dot[c] += folded_row * Z[i, c]


@_jit
def saga_catch_up(weights_by_feature, mean_by_feature, drift, last_step, k):
    """Bring every feature up to date with step ``k`` (see :func:`sparse_saga_epoch_chunk`)."""
    n_params = weights_by_feature.shape[1]
    for j in range(weights_by_feature.shape[0]):
        if last_step[j] < k:
            lag = drift[k] - drift[last_step[j]]
            w = weights_by_feature[j]
            mean = mean_by_feature[j]
            for c in range(n_params):
                w[c] -= lag * mean[c]
            last_step[j] = k


# ------------------------------------------------- momentum on CSR, lazily
#
# A step of heavy-ball (or Nesterov) momentum moves every weight, the L2 term's
# velocity included, so a plain sparse epoch cannot take it. But on a feature
# outside the batch the step is linear in its (weight, velocity, average)
# triple, the same 3 x 3 map for every such weight (see :func:`_step_map`). So,
# as for SAGA's mean-gradient steps, each feature takes its missed steps just
# in time, when a batch reads it or the epoch ends: one product of maps applied
# to its classes. The product of any run of steps comes from a table of
# products over aligned blocks of 1, 2, 4, ... steps (at most two blocks a
# level), built as the steps are taken: only products of the steps
# themselves, no inverse (the velocity's factor momentum**k makes inverses of
# long runs lose every digit). Maps are rows of 9 floats, 3 x 3 row-major.

MAP_SIZE = 7  # a 3 x 3 map whose last column is (0, 0, g): its other 7 entries


@_jit
def _step_map(eta, l2, momentum, nesterov, rho):
    """What one step does to a (weight, velocity, average) triple whose gradient is
    its L2 term alone: ``(a, b, c, d, e, f, g)``, the map
    ``w' = a w + b v``, ``v' = c w + d v``, ``A' = e w + f v + g A``.

    Heavy ball, as :meth:`SGDOptimizer.step`: ``v' = momentum v + l2 w``,
    ``w' = w - eta v'``; Nesterov: ``w' = w - eta (l2 w + momentum v')``. Then
    the running average ``A' = (1 - rho) A + rho w'`` (``rho`` is 1 while the
    average copies the weights, 0 without averaging).
    """
    if nesterov:
        a, b = 1.0 - eta * l2 * (1.0 + momentum), -eta * momentum * momentum
    else:
        a, b = 1.0 - eta * l2, -eta * momentum
    return a, b, l2, momentum, rho * a, rho * b, 1.0 - rho


@_jit
def _compose(later, earlier):
    """The product ``later @ earlier`` of two maps (see :func:`_step_map`).

    As scalars: with the maps' entries read from arrays inside these loops the
    epoch took 1.3x as long (measured against the 2 x 2 maps without averages).
    """
    a, b, c, d, e, f, g = later
    a2, b2, c2, d2, e2, f2, g2 = earlier
    return (
        a * a2 + b * c2,
        a * b2 + b * d2,
        c * a2 + d * c2,
        c * b2 + d * d2,
        e * a2 + f * c2 + g * e2,
        e * b2 + f * d2 + g * f2,
        g * g2,
    )


def step_products_layout(n_steps):
    """``level_start`` of the table of block products for an epoch of ``n_steps``
    steps: level ``L`` holds the ``n_steps >> L`` products of 2**L steps. Returns
    ``(level_start, n_rows)``."""
    n_levels = max(1, int(n_steps).bit_length())
    sizes = [n_steps >> level for level in range(n_levels)]
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    return starts, int(sum(sizes))


@_jit
def _store(table, row, step):
    a, b, c, d, e, f, g = step
    table[row, 0], table[row, 1], table[row, 2], table[row, 3] = a, b, c, d
    table[row, 4], table[row, 5], table[row, 6] = e, f, g


@_jit
def _load(table, row):
    r = table[row]
    return r[0], r[1], r[2], r[3], r[4], r[5], r[6]


@_jit
def _record_step(products, level_start, k, step):
    """Store step ``k``'s map, and the block products it completes."""
    _store(products, level_start[0] + k, step)
    level = 1
    while level < level_start.shape[0] and (k + 1) % (1 << level) == 0:
        q = ((k + 1) >> level) - 1
        lower = level_start[level - 1]
        block = _compose(_load(products, lower + 2 * q + 1), _load(products, lower + 2 * q))
        _store(products, level_start[level] + q, block)
        level += 1


@_jit
def _steps_product(products, level_start, first, stop):
    """The map of steps ``first`` to ``stop - 1``, all recorded, in order."""
    total = (1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 1.0)
    n_levels = level_start.shape[0]
    p = first
    while p < stop:
        level = 0
        while (
            level + 1 < n_levels
            and p % (1 << (level + 1)) == 0
            and p + (1 << (level + 1)) <= stop
        ):
            level += 1
        total = _compose(_load(products, level_start[level] + (p >> level)), total)
        p += 1 << level
    return total


@_jit
def _lag_map(products, level_start, memo, memo_at, first, k):
    """:func:`_steps_product` of ``first`` to ``k - 1``, remembered for step ``k``:
    the features a batch reads were mostly last moved by a few recent batches,
    and share their runs of missed steps. Measured on 100,000 x 50,000 CSR, 20
    classes, momentum 0.9, three epochs each in separate processes: 1.44-1.64 s
    an epoch with the product computed per feature, 1.31-1.43 s remembered. The
    rest of the catch-up is the map's pass over weights and velocities (without
    any catch-up at all, a wrong epoch, 0.87-0.95 s)."""
    if memo_at[first] != k:
        _store(memo, first, _steps_product(products, level_start, first, k))
        memo_at[first] = k
    return _load(memo, first)


@_jit
def _apply_map(weights_by_feature, velocity_by_feature, average_by_feature, j, step):
    """The map ``step`` applied to feature ``j``'s (weight, velocity[, average]) of
    each class; ``average_by_feature`` None: no averages. (None, not an empty
    array: the compiler then drops the averages' code from the epochs without
    them, which with a run-time test took 1.3-1.4x as long, medians of 7 pairs.)"""
    if average_by_feature is None:
        _map_pairs(weights_by_feature[j], velocity_by_feature[j], step)
    else:
        _map_triples(weights_by_feature[j], velocity_by_feature[j], average_by_feature[j], step)


@_jit
def _map_pairs(w, v, step):
    a, b, c, d, _, _, _ = step
    for k in range(w.shape[0]):
        weight, velocity = w[k], v[k]
        w[k] = a * weight + b * velocity
        v[k] = c * weight + d * velocity


@_jit
def _map_triples(w, v, average, step):
    a, b, c, d, e, f, g = step
    for k in range(w.shape[0]):
        weight, velocity = w[k], v[k]
        w[k] = a * weight + b * velocity
        v[k] = c * weight + d * velocity
        average[k] = e * weight + f * velocity + g * average[k]


@_jit
def momentum_catch_up(
    weights_by_feature, velocity_by_feature, average_by_feature, products, level_start, memo,
    memo_at, last_step, k,
):  # fmt: skip
    """Bring every feature's weights, velocities (and averages) up to date with step ``k``."""
    for j in range(weights_by_feature.shape[0]):
        if last_step[j] < k:
            step = _lag_map(products, level_start, memo, memo_at, last_step[j], k)
            _apply_map(weights_by_feature, velocity_by_feature, average_by_feature, j, step)
            last_step[j] = k


@_jit
def _momentum_logits(
    data, indices, indptr, order, first, m, weights_by_feature, velocity_by_feature,
    average_by_feature, intercept, offset, pending, offset_dot, offset_sq_norm, Z,
    x_dot_offsets, products, level_start, memo, memo_at, last_step, k,
):  # fmt: skip
    """The logits of a batch of CSR rows, each feature first brought up to step ``k``.

    Tried and dropped: reading a feature behind step ``k`` through its map
    without writing it, the update then writing it once through the map up to
    step ``k + 1``. On 100,000 x 50,000 CSR, 20 classes, momentum 0.9, it was
    1.33x slower (median of 5 pairs in one process): every read of such a
    feature reads its velocities too, and the update needs every feature's map.
    """
    n_params = weights_by_feature.shape[1]
    centred = offset.shape[0] > 0
    for i in range(m):
        row = order[first + i]
        for c in range(n_params):
            Z[i, c] = 0.0
        x_dot_offset = 0.0
        for p in range(indptr[row], indptr[row + 1]):
            j = indices[p]
            w = weights_by_feature[j]
            if last_step[j] < k:
                step = _lag_map(products, level_start, memo, memo_at, last_step[j], k)
                _apply_map(weights_by_feature, velocity_by_feature, average_by_feature, j, step)
                last_step[j] = k
            value = data[p]
            for c in range(n_params):
                Z[i, c] += value * w[c]
            if centred:
                x_dot_offset += value * offset[j]
        for c in range(n_params):
            Z[i, c] += intercept[c]
        if centred:
            x_dot_offsets[i] = x_dot_offset
            for c in range(n_params):
                Z[i, c] -= (x_dot_offset - offset_sq_norm) * pending[c] + offset_dot[c]


@_jit
def _momentum_scatter(
    data, indices, indptr, order, first, m, weights_by_feature, velocity_by_feature,
    average_by_feature, Z, step, inject, rho, last_step, k,
):  # fmt: skip
    """The batch's step on its own features: at a feature's first non-zero, step
    ``k``'s map (its L2 part); at each non-zero, the gradient ``x Z[i]`` added to
    the velocity, ``inject`` times it taken from the weight (and ``rho`` times
    that from the average)."""
    n_params = weights_by_feature.shape[1]
    for i in range(m):
        row = order[first + i]
        for p in range(indptr[row], indptr[row + 1]):
            j = indices[p]
            if last_step[j] == k:
                _apply_map(weights_by_feature, velocity_by_feature, average_by_feature, j, step)
                last_step[j] = k + 1
            w = weights_by_feature[j]
            v = velocity_by_feature[j]
            value = data[p]
            factor = weights_by_feature.dtype.type(inject * value)
            vfactor = velocity_by_feature.dtype.type(value)
            for c in range(n_params):
                v[c] += vfactor * Z[i, c]
                w[c] -= factor * Z[i, c]
            if average_by_feature is not None:
                average = average_by_feature[j]
                afactor = average_by_feature.dtype.type(rho * inject * value)
                for c in range(n_params):
                    average[c] -= afactor * Z[i, c]


@_jit
def _momentum_dense_step(
    Z, m, step, inject, eta, momentum, nesterov, rho, intercept, intercept_velocity,
    intercept_average, fit_intercept, centred, x_dot_offsets, pending, velocity_pending,
    average_pending, offset_dot, offset_velocity_dot,
):  # fmt: skip
    """Step ``k`` on what is not stored per feature: the intercept, its velocity and
    average, and (``centred``) the rank-one parts of weights, velocities and
    averages, and the products of the first two with the offset (see
    :func:`sparse_momentum_epoch_chunk`)."""
    a, b, c_, d, _, _, _ = step
    averaging = intercept_average.shape[0] > 0
    for c in range(intercept.shape[0]):
        total = 0.0
        for i in range(m):
            total += Z[i, c]
        gradient = total if fit_intercept else 0.0
        velocity = momentum * intercept_velocity[c] + gradient
        intercept_velocity[c] = velocity
        if nesterov:
            intercept[c] -= eta * gradient + eta * momentum * velocity
        else:
            intercept[c] -= eta * velocity
        if averaging:
            intercept_average[c] += rho * (intercept[c] - intercept_average[c])
        if centred:
            p, q = pending[c], velocity_pending[c]
            pending[c] = a * p + b * q - inject * gradient
            velocity_pending[c] = c_ * p + d * q + gradient
            if averaging:
                average_pending[c] += rho * (pending[c] - average_pending[c])
            moved = 0.0
            for i in range(m):
                moved += x_dot_offsets[i] * Z[i, c]
            o, u = offset_dot[c], offset_velocity_dot[c]
            offset_dot[c] = a * o + b * u - inject * moved
            offset_velocity_dot[c] = c_ * o + d * u + moved


@_jit
def sparse_momentum_epoch_chunk(
    data, indices, indptr, y, weights, order, start, stop, batch_size,
    weights_by_feature, velocity_by_feature, average_by_feature, intercept, intercept_velocity,
    intercept_average, offset, pending, velocity_pending, average_pending, offset_dot,
    offset_velocity_dot, offset_sq_norm, Z, products, level_start, memo, memo_at, last_step,
    step_state, counters, momentum, nesterov, average_start, capacity,
    schedule, eta_fixed, eta0, power_t, alpha, schedule_alpha, t0, fit_intercept, max_logit,
):  # fmt: skip
    """Momentum (heavy ball or Nesterov) batches ``order[start:stop]`` of CSR data,
    at a cost that follows the non-zeros.

    :meth:`EpochEngine.run_epoch`'s numpy epoch with momentum, an L2 penalty and
    optionally averaging, without its dense update of every weight, velocity
    and average per batch: a feature outside the batch moves by the step's 3 x
    3 map of its (weight, velocity, average) triples, taken just in time from
    the table ``products`` (see the section's comment). ``last_step[j]``: the
    step feature ``j``'s stored values are up to date with.
    :func:`momentum_catch_up` brings every feature up to date: call it before
    the weights are read outside.

    Centred (``offset`` not empty), the true weights, velocities and averages
    are the stored ones less ``outer(offset, pending)``, ``outer(offset,
    velocity_pending)`` and ``outer(offset, average_pending)``; the rank-one
    parts follow each step's map and take the gradient's rank-one term, and
    the logits read ``offset_dot = offset @ weights_by_feature`` (with
    ``offset_velocity_dot`` for the map), kept up to date per batch in O(rows
    x classes).

    Parameters
    ----------
    velocity_by_feature, average_by_feature : ndarray of shape (n_features, n_params)
        The velocities and averages of ``weights_by_feature``, updated in place;
        no averaging: ``average_by_feature`` None and ``intercept_average`` empty.
    intercept_velocity, intercept_average : ndarray of shape (n_params,)
    pending, velocity_pending, average_pending, offset_dot, offset_velocity_dot : ndarray
        ``(n_params,)`` float64, read and written (empty when not centred).
    products, level_start : ndarray
        The table of step maps, ``(n_rows, MAP_SIZE)`` float64, laid out by
        :func:`step_products_layout` for the epoch's number of steps.
    memo, memo_at : ndarray of shape (n_steps + 1, MAP_SIZE), float64, and (n_steps + 1,), int64
        Scratch for :func:`_lag_map` (``memo_at`` -1 at the epoch's start).
    last_step : ndarray of shape (n_features,), int64
    step_state : ndarray of shape (1,), int64
        The epoch's step count so far.
    counters : ndarray of shape (2,), int64
        The optimiser's ``t`` and ``n_averaged``, updated after every batch.
    momentum : float
    nesterov : bool
    average_start : int
        Averaging folds the iterates in from ``t > average_start`` on, and
        copies them before.
    capacity : int
        Steps the table holds. When they are taken, every feature is brought up
        to date and the table starts again (the steps counted from 0): its
        memory stays bounded however many batches an epoch has.

    ``step_state``, ``last_step`` and ``memo_at`` count steps from the table's start.

    The other parameters are those of :func:`sparse_epoch_chunk`.

    Returns
    -------
    loss_sum : float
    n_seen : int
    status : int
    """
    scale = 1.0 / batch_size
    centred = offset.shape[0] > 0
    averaging = intercept_average.shape[0] > 0
    x_dot_offsets = np.zeros(batch_size)
    t = counters[0]
    n_averaged = counters[1]
    k = step_state[0]
    loss_sum = 0.0
    n_seen = 0
    for first in range(start, stop, batch_size):
        m = min(batch_size, stop - first)
        if k == capacity:
            momentum_catch_up(
                weights_by_feature, velocity_by_feature, average_by_feature, products,
                level_start, memo, memo_at, last_step, k,
            )  # fmt: skip
            last_step[:] = 0
            memo_at[:] = -1
            k = 0
        _momentum_logits(
            data, indices, indptr, order, first, m, weights_by_feature, velocity_by_feature,
            average_by_feature, intercept, offset, pending, offset_dot, offset_sq_norm, Z,
            x_dot_offsets, products, level_start, memo, memo_at, last_step, k,
        )  # fmt: skip
        batch_loss, status = _residual(Z, m, y, order, first, weights, scale, max_logit)
        if status != STATUS_OK:
            step_state[0] = k
            return loss_sum, n_seen, status
        loss_sum += batch_loss
        eta = _step_size(schedule, t, eta_fixed, eta0, power_t, schedule_alpha, t0)
        rho = 0.0
        if averaging:  # as SGDOptimizer.step: after the step, t counts its rows
            if t + m > average_start:
                n_averaged += 1
                rho = 1.0 / n_averaged
            else:
                rho = 1.0  # copying
        step = _step_map(eta, alpha * m / batch_size, momentum, nesterov, rho)
        inject = eta * (1.0 + momentum) if nesterov else eta
        _momentum_scatter(
            data, indices, indptr, order, first, m, weights_by_feature, velocity_by_feature,
            average_by_feature, Z, step, inject, rho, last_step, k,
        )  # fmt: skip
        _momentum_dense_step(
            Z, m, step, inject, eta, momentum, nesterov, rho, intercept, intercept_velocity,
            intercept_average, fit_intercept, centred, x_dot_offsets, pending, velocity_pending,
            average_pending, offset_dot, offset_velocity_dot,
        )  # fmt: skip
        _record_step(products, level_start, k, step)
        k += 1
        t += m
        n_seen += m
        counters[0] = t
        counters[1] = n_averaged
        step_state[0] = k
    return loss_sum, n_seen, STATUS_OK
