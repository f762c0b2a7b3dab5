"""The epoch engine: one pass of minibatch SGD over the training rows.

Same mathematics as the reference kernels of :mod:`sksoftmax._loss`, arranged
for speed: every batch-sized array is allocated once per fit, the logits are
turned into the loss residual in place, and ``X`` is never copied (a shuffled
batch is gathered into a reusable buffer; an unshuffled one is a view).
"""

import numpy as np
import scipy.sparse as sp
from scipy.special import expit


class DivergenceError(FloatingPointError):
    """The training loss stopped being finite."""


class EpochEngine:
    """Buffers and batch loop for one training run.

    Parameters
    ----------
    X : {ndarray, csr_matrix} of shape (n_samples, n_features)
        Training data; its dtype is the training dtype.
    n_params : int
        Rows of ``coef`` (``n_classes``, or 1 for binary problems).
    batch_size : int
    """

    def __init__(self, X, n_params, batch_size):
        n_samples, n_features = X.shape
        self.dtype = X.dtype
        self.sparse = sp.issparse(X)
        self.batch_size = max(1, min(batch_size, n_samples))
        m = self.batch_size
        self.binary = n_params == 1
        self.batch_X = None if self.sparse else np.empty((m, n_features), dtype=X.dtype)
        self.logits = np.empty((m, n_params), dtype=X.dtype)
        self.row_max = np.empty(m, dtype=X.dtype)
        self.row_sum = np.empty(m, dtype=X.dtype)
        self.true_logit = np.empty(m, dtype=X.dtype)
        self.rows = np.arange(m)
        self.grad_coef = np.empty((n_params, n_features), dtype=X.dtype)
        self.penalty_grad = np.empty((n_params, n_features), dtype=X.dtype)
        self.grad_intercept = np.empty(n_params, dtype=X.dtype)

    def residual_(self, Z, y, weights):
        """Turn logits ``Z`` into ``w_i * (P - Y)`` in place; return ``sum_i w_i * CE_i``.

        Parameters
        ----------
        Z : ndarray of shape (m, n_params)
            Logits of the batch; overwritten by the residual.
        y : ndarray of shape (m,)
            Class indices.
        weights : ndarray of shape (m,) or None
            Per-sample scale (sample weight over its mean); None means ones.
        """
        m = Z.shape[0]
        if self.binary:
            z = Z[:, 0]
            # log(1 + exp(z)) - y z, the binary cross-entropy from the logit
            ce = np.logaddexp(0.0, z)
            ce -= np.where(y == 1, z, 0.0)
            expit(z, out=z)
            z -= y
        else:
            row_max = self.row_max[:m]
            row_sum = self.row_sum[:m]
            rows = self.rows[:m]
            np.max(Z, axis=1, out=row_max)
            Z -= row_max[:, None]
            true_logit = self.true_logit[:m]
            np.take(Z.ravel(), rows * Z.shape[1] + y, out=true_logit)
            np.exp(Z, out=Z)
            np.sum(Z, axis=1, out=row_sum)
            Z /= row_sum[:, None]
            Z[rows, y] -= 1.0
            np.log(row_sum, out=row_sum)
            ce = np.subtract(row_sum, true_logit, out=row_sum)
        if weights is None:
            return float(ce.sum(dtype=np.float64))
        Z *= weights[:, None]
        return float(np.dot(weights.astype(np.float64), ce.astype(np.float64)))

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
        alpha,
        fit_intercept,
        stop_requested=None,
    ):
        """One pass over the rows named by ``order``, updating ``coef`` / ``intercept``.

        Parameters
        ----------
        X : {ndarray, csr_matrix} of shape (n_samples, n_features)
        y : ndarray of shape (n_samples,)
            Class indices.
        weights : ndarray of shape (n_samples,) or None
            Sample weights divided by their mean over the training rows.
        order : ndarray of int or None
            Rows to visit, in order; None means all rows in storage order.
        coef : ndarray of shape (n_params, n_features)
        intercept : ndarray of shape (n_params,)
        optimizer : SGDOptimizer
        alpha : float
        fit_intercept : bool
        stop_requested : callable or None
            Polled after each batch; a true answer ends the epoch early.

        Returns
        -------
        loss_sum : float
            ``sum_i w_i * CE_i`` over the visited rows, each taken before its
            batch's update.
        n_seen : int
            Rows visited (fewer than ``len(order)`` only if stopped early).
        """
        n_rows = X.shape[0] if order is None else len(order)
        params = [coef, intercept] if fit_intercept else [coef]
        grads = [self.grad_coef, self.grad_intercept] if fit_intercept else [self.grad_coef]
        loss_sum = 0.0
        n_seen = 0
        for start in range(0, n_rows, self.batch_size):
            stop = min(start + self.batch_size, n_rows)
            m = stop - start
            if order is None:
                batch_X = X[start:stop]
                batch_y = y[start:stop]
                batch_w = None if weights is None else weights[start:stop]
            else:
                idx = order[start:stop]
                if self.sparse:
                    batch_X = X[idx]
                else:
                    batch_X = np.take(X, idx, axis=0, out=self.batch_X[:m])
                batch_y = y[idx]
                batch_w = None if weights is None else weights[idx]

            Z = self.logits[:m]
            if self.sparse:
                Z[...] = batch_X @ coef.T
            else:
                np.matmul(batch_X, coef.T, out=Z)
            Z += intercept
            batch_loss = self.residual_(Z, batch_y, batch_w)
            if not np.isfinite(batch_loss):
                raise DivergenceError(f"non-finite loss after {optimizer.t} samples")
            loss_sum += batch_loss
            Z *= 1.0 / m

            if self.sparse:
                self.grad_coef[...] = (batch_X.T @ Z).T
            else:
                np.matmul(Z.T, batch_X, out=self.grad_coef)
            if alpha:
                np.multiply(coef, alpha, out=self.penalty_grad)
                self.grad_coef += self.penalty_grad
            if fit_intercept:
                np.sum(Z, axis=0, out=self.grad_intercept)
            optimizer.step(params, grads, m)
            n_seen += m
            if stop_requested is not None and stop_requested():
                break
        return loss_sum, n_seen
