"""The epoch engine in array-API operations: the batch loop on X's device.

Same batches, residual scaling, centring, SAGA direction, penalty and
optimiser update as the numpy loop of :class:`sksoftmax._engine.EpochEngine`
(its reference, to rounding), written against the namespace of ``X``
(gather, matmul, log-sum-exp). Nothing is read back to the host inside an
epoch: the loss and the largest logit are summed on the device and checked
once at its end, so a GPU never waits for Python between batches.
"""

import numpy as np

from ._array_api import _widest, few_threads, namespace_of, to_device
from ._engine import MAX_LOGIT, DivergenceError


def _apply_l2(xp, grad_coef, coef, alpha, share):
    """The penalty's part of a batch's step: ``grad + alpha * share * coef``.

    ``share`` is the batch's size over ``batch_size`` (a ragged last batch takes
    its share of the penalty, as of SAGA's mean). The one place the penalty
    enters the namespace engine.

    Parameters
    ----------
    xp : namespace
    grad_coef, coef : array of shape (n_params, n_features)
    alpha : float
    share : float

    Returns
    -------
    grad_coef : array of shape (n_params, n_features)
    """
    if not alpha:
        return grad_coef
    return grad_coef + (alpha * share) * coef


class NamespaceEngine:
    """Batch loop of one training call for an array-API ``X``, on its device.

    Parameters
    ----------
    X : array of shape (n_samples, n_features)
        Dense, float32 or float64, of an array-API namespace.
    n_params : int
        Rows of ``coef`` (``n_classes``, or 1 for two classes).
    batch_size : int
    """

    compiled = False
    sparse = False

    def __init__(self, X, n_params, batch_size, sparse_kernels=True):
        self.xp, self.device = namespace_of(X)
        self.dtype = X.dtype
        self.batch_size = max(1, batch_size)
        self.binary = n_params == 1
        self.n_params = n_params
        self.wide = _widest(self.xp, self.device)  # the dtype of the epoch's loss sum
        self._host_y = self._host_w = None  # the host arrays last moved to the device
        self._y = self._w = None
        self._work = self.batch_size * X.shape[1] * n_params  # multiply-adds per product

    def screens_nonfinite_rows(self, coef):
        """False: the caller checks X for NaN and infinity itself."""
        return False

    def logits_function(self, coef):
        """None: the objective's default logits."""
        return None

    def blas_threads(self):
        """None: the namespace runs its own threads."""
        return None

    def _on_device(self, y, weights):
        """Labels and weights on the device, moved once per training call."""
        xp, device = self.xp, self.device
        if y is not self._host_y:
            self._host_y, self._y = y, to_device(np.asarray(y, dtype=np.int64), xp, device)
        if weights is not self._host_w:
            self._host_w = weights
            self._w = None if weights is None else to_device(weights, xp, device, self.dtype)
        return self._y, self._w

    def residual(self, Z, y, w):
        """``w_i * (P - Y)`` and ``sum_i w_i * CE_i`` (a device scalar) of a batch.

        Parameters
        ----------
        Z : array of shape (m, n_params)
            Logits with the intercept added.
        y : array of shape (m,)
            Class indices.
        w : array of shape (m,) or None

        Returns
        -------
        R : array of shape (m, n_params)
        loss_sum : array of shape ()
        """
        xp = self.xp
        if self.binary:
            z = Z[:, 0]
            y_float = xp.astype(y, Z.dtype)
            # log(1 + exp(z)) - y z, the binary cross-entropy from the logit
            ce = xp.logaddexp(xp.zeros_like(z), z) - y_float * z
            R = xp.reshape(1.0 / (1.0 + xp.exp(-z)) - y_float, (-1, 1))
        else:
            shifted = Z - xp.max(Z, axis=1, keepdims=True)
            E = xp.exp(shifted)
            row_sum = xp.sum(E, axis=1, keepdims=True)
            columns = xp.reshape(xp.arange(Z.shape[1], device=self.device), (1, -1))
            Y = xp.astype(xp.reshape(y, (-1, 1)) == columns, Z.dtype)
            ce = xp.log(row_sum[:, 0]) - xp.sum(shifted * Y, axis=1)
            R = E / row_sum - Y
        if w is not None:
            R, ce = R * xp.reshape(w, (-1, 1)), w * ce
        return R, xp.sum(xp.astype(ce, self.wide))

    def run_epoch(
        self,
        X,
        y,
        weights,
        order,
        coef,
        intercept,
        optimizer,
        *,
        fit_intercept,
        penalty=None,
        alpha=None,
        stop_requested=None,
        offset=None,
        saga=None,
    ):
        """One pass over the rows named by ``order``; see :meth:`EpochEngine.run_epoch`.

        ``y``, ``weights`` and ``order`` are host arrays (``order`` the numpy
        RandomState's permutation, as for the numpy engine); ``coef`` and
        ``intercept`` are updated in place on the device.

        Returns
        -------
        loss_sum : float
        n_seen : int

        Raises
        ------
        DivergenceError
            When a loss was not finite or a logit passed ``MAX_LOGIT`` in the
            epoch (checked once, at its end).
        """
        xp, device = self.xp, self.device
        if penalty is not None and penalty.l1:  # the estimator refuses it before
            raise ValueError("The array-API engine applies no L1 penalty.")
        alpha = (0.0 if alpha is None else alpha) if penalty is None else penalty.l2
        y_dev, w_dev = self._on_device(y, weights)
        n_rows = X.shape[0] if order is None else len(order)
        order_dev = None if order is None else to_device(np.asarray(order, np.int64), xp, device)
        if order_dev is not None:
            y_dev = xp.take(y_dev, order_dev)
            w_dev = None if w_dev is None else xp.take(w_dev, order_dev)
        memory = positions = None
        if saga is not None:  # the residual table in this epoch's order: slices per batch
            positions = saga.positions(order, n_rows)
            memory = xp.take(saga.residuals, to_device(positions, xp, device), axis=0)
        params = [coef, intercept]
        zero_intercept = xp.zeros_like(intercept)
        loss_sum = xp.zeros((), dtype=self.wide, device=device)
        max_logit = xp.zeros((), dtype=self.dtype, device=device)
        n_seen = 0
        try:
            with few_threads(xp, device, self._work):
                for start in range(0, n_rows, self.batch_size):
                    stop = min(start + self.batch_size, n_rows)
                    m = stop - start
                    if order_dev is None:
                        batch_X = X[start:stop, ...]
                    else:
                        batch_X = xp.take(X, order_dev[start:stop], axis=0)
                    batch_w = None if w_dev is None else w_dev[start:stop]
                    shift = intercept if offset is None else intercept - coef @ offset
                    Z = batch_X @ coef.T + shift
                    max_logit = xp.maximum(max_logit, xp.max(xp.abs(Z)))
                    R, batch_loss = self.residual(Z, y_dev[start:stop], batch_w)
                    loss_sum = loss_sum + batch_loss
                    R = R * (1.0 / self.batch_size)
                    if memory is not None:  # the gradient of the change in each row's residual
                        change = R - memory[start:stop, ...]
                        memory[start:stop, ...] = R
                        R = change
                    grad_coef = R.T @ batch_X
                    grad_intercept = xp.sum(R, axis=0) if fit_intercept else zero_intercept
                    if offset is not None:
                        grad_coef = grad_coef - xp.reshape(grad_intercept, (-1, 1)) * offset
                    share = m / self.batch_size
                    if saga is not None:
                        grad_coef, grad_intercept = saga.direction(grad_coef, grad_intercept, share)
                    grad_coef = _apply_l2(xp, grad_coef, coef, alpha, share)
                    optimizer.step(params, [grad_coef, grad_intercept], m)
                    n_seen += m
                    if stop_requested is not None and stop_requested():
                        break
        finally:
            if memory is not None:
                saga.residuals = _scatter_back(xp, device, saga.residuals, memory, positions)
        loss_sum, max_logit = float(loss_sum), float(max_logit)
        if not max_logit < MAX_LOGIT:  # NaN too
            raise DivergenceError(f"logits past {MAX_LOGIT:.0e} after {optimizer.t} samples")
        if not np.isfinite(loss_sum):
            raise DivergenceError(f"non-finite loss after {optimizer.t} samples")
        return loss_sum, n_seen


def _scatter_back(xp, device, table, permuted, positions):
    """``table`` with ``table[positions] = permuted``, by a gather: ``positions`` is a
    permutation of the table's rows, or of its first rows when fewer were visited."""
    n = table.shape[0]
    if len(positions) == n:
        inverse = np.empty(n, dtype=np.int64)
        inverse[positions] = np.arange(n)
        return xp.take(permuted, to_device(inverse, xp, device), axis=0)
    # Not a full pass (it cannot happen through the estimator): row by row on the host.
    from ._array_api import to_host

    host = np.array(to_host(table))
    host[positions] = to_host(permuted)
    return to_device(host, xp, device, table.dtype)
