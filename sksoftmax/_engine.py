"""The epoch engine: one pass of minibatch SGD over the training rows.

Same mathematics as the reference kernels of :mod:`sksoftmax._loss`, arranged
for speed: every batch-sized array is allocated once per fit, the logits are
turned into the loss residual in place, and ``X`` is never copied (a shuffled
batch is gathered into a reusable buffer; an unshuffled one is a view). When
numba is installed, large problems run the same epochs compiled
(:mod:`sksoftmax._compiled`); the numpy code here is their reference.
"""

import importlib
import importlib.util
import os
import warnings

import numpy as np
import scipy.sparse as sp
from scipy.special import expit

from ._penalty import Penalty, cumulative_l1_

# Past this magnitude a logit difference carries no information in floating
# point; a step too large for the data (e.g. eta * alpha > 2, which makes the
# L2 shrinkage flip and grow the weights geometrically) gets here within a few
# batches, long before the loss overflows to inf.
MAX_LOGIT = 1e15

# Below this many multiply-adds per batch product, BLAS runs on one thread.
SMALL_PRODUCT_FLOPS = 2**24

# Dense X with at least this many entries trains with the compiled epoch when
# numba is installed. Below it an epoch takes milliseconds in numpy, less than
# loading the compiled kernels (cached on disk after the first compilation).
COMPILED_MIN_SIZE = 2**20

# CSR X with at least this many non-zeros (or a model of COMPILED_MIN_SIZE
# weights) trains with the compiled sparse epochs.
COMPILED_MIN_NNZ = 2**18

# The compiled sparse momentum epoch's table of step maps holds at most this many
# steps (about 180 bytes each, with its memo); past them every feature is brought
# up to date (one pass over the weights) and the table starts again.
MOMENTUM_TABLE_STEPS = 2**16

# Dense X: and with at most this many logits per batch (n_params * batch_size).
# Measured on one core, one epoch, compiled / numpy time: 0.1-0.9 up to here
# (0.6 at 784 features x 10 classes x batch 128); past it BLAS's products win,
# e.g. 1.1-1.3 at 50 classes x batch 128 and 1.2-2.1 at batch 512.
COMPILED_MAX_BATCH_LOGITS = 4096

# The compiled epoch returns to Python to poll for Ctrl-C after at most this
# many rows and this many multiply-adds (rounded down to whole batches, at
# least one): a few milliseconds of work per call.
COMPILED_CHUNK_ROWS = 2**14
COMPILED_CHUNK_WORK = 2**26

_SWITCHED_OFF = {"0", "false", "off", "no"}
_kernels = None  # the imported sksoftmax._compiled, once loaded
_kernels_failed = False  # numba is installed but the kernels would not load


def compiled_available():
    """True when numba is installed, loads, and ``SKSOFTMAX_NUMBA`` is not 0/false/off/no.

    Checked without importing numba, which takes over a second: small fits
    never pay for it.
    """
    if os.environ.get("SKSOFTMAX_NUMBA", "1").strip().lower() in _SWITCHED_OFF:
        return False
    return not _kernels_failed and importlib.util.find_spec("numba") is not None


def _load_kernels():
    """The compiled kernels, or None (with one warning) when numba fails to load them."""
    global _kernels, _kernels_failed
    if _kernels is None and not _kernels_failed:
        try:
            _kernels = importlib.import_module("._compiled", __package__)
        except Exception as exc:  # e.g. a numba built for another numpy
            _kernels_failed = True
            warnings.warn(
                f"sksoftmax's compiled engine is unavailable ({type(exc).__name__}: {exc}); "
                "training with numpy instead. Set SKSOFTMAX_NUMBA=0 to silence this.",
                RuntimeWarning,
                stacklevel=2,
            )
    return _kernels


def compiled_sparse_rule(optimizer, penalty=None, saga=False):
    """Whether the compiled sparse epochs implement ``optimizer``'s step rule with
    ``penalty``: plain or averaged steps with any penalty, momentum (heavy ball
    or Nesterov, averaged or not) without an L1 part (the cumulative penalty's
    clipping is not a linear map, which the lazy momentum steps need); under
    SAGA (``saga``), plain steps and no L1 part. The others take the numpy
    epoch, which updates every weight per batch."""
    l1 = penalty is not None and bool(penalty.l1)
    if saga:
        return not (optimizer.momentum or optimizer.averaging or l1)
    return not (optimizer.momentum and l1)


def _compiled_candidate(X, n_params, rows_per_batch):
    """Whether X is large enough, and of a shape, for the compiled epochs to pay."""
    if X.dtype not in (np.float32, np.float64):
        return False
    if sp.issparse(X):
        # The numpy sparse epoch pays ~1 ms of Python per batch: any large
        # enough problem gains, whatever its shape; and so does a small chunk
        # of a stream into a large model (partial_fit on 1,000 rows).
        return X.nnz >= COMPILED_MIN_NNZ or X.shape[1] * n_params >= COMPILED_MIN_SIZE
    return (
        X.flags.c_contiguous
        and X.size >= COMPILED_MIN_SIZE
        and n_params * rows_per_batch <= COMPILED_MAX_BATCH_LOGITS
    )


def sparse_saga_compiles(X, n_params):
    """Whether SAGA on this CSR X would run compiled (with plain steps and no L1)."""
    return sp.issparse(X) and compiled_available() and _compiled_candidate(X, n_params, 1)


# The sparse epochs fold their pending L2 scale into the weights below this.
_SMALLEST_SCALE = 1e-6


def smallest_scale(optimizer, dtype):
    """The pending L2 scale below which the sparse epochs fold it into the weights.

    1e-6; 1e-2 when averaging float32 weights, whose rounding (6e-8) the lazy
    average multiplies by up to 1 / scale (measured at 1e-6: errors of 3e-4 to
    4e-3 on averages of 0.4 after 500 batches; each fold costs a pass over the
    weights, so not always).
    """
    return 1e-2 if optimizer.averaging and dtype == np.float32 else _SMALLEST_SCALE


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
    sparse_kernels : bool, default=True
        False when the compiled sparse epochs do not implement the step rule
        and penalty (see :func:`compiled_sparse_rule`): numba is then not
        loaded for CSR X.
    """

    def __init__(self, X, n_params, batch_size, sparse_kernels=True):
        n_samples, n_features = X.shape
        self.dtype = X.dtype
        self.sparse = sp.issparse(X)
        # Not clipped to n_samples: a partial_fit chunk smaller than batch_size
        # steps in proportion to its size. The buffers are.
        self.batch_size = max(1, batch_size)
        m = max(1, min(batch_size, n_samples))
        self.binary = n_params == 1
        # The compiled sparse epochs need a rule they write; dense, all.
        candidate = (sparse_kernels or not self.sparse) and _compiled_candidate(X, n_params, m)
        self._kernels = _load_kernels() if candidate and compiled_available() else None
        self.compiled = self._kernels is not None
        self._weights_by_feature = None  # the sparse epoch's working copy of coef
        gathers = not (self.sparse or self.compiled)
        self.batch_X = np.empty((m, n_features), dtype=X.dtype) if gathers else None
        self.logits = np.empty((m, n_params), dtype=X.dtype)
        # The softmax runs on the transposed logits: reductions over a short,
        # strided class axis cost numpy ~10x more than the same work as
        # n_params vector operations over the batch.
        self.logits_t = np.empty((n_params, m), dtype=X.dtype)
        self.row_max = np.empty(m, dtype=X.dtype)
        self.row_sum = np.empty(m, dtype=X.dtype)
        self.true_logit = np.empty(m, dtype=X.dtype)
        self.rows = np.arange(m)
        self.grad_coef = np.empty((n_params, n_features), dtype=X.dtype)
        self.penalty_grad = np.empty((n_params, n_features), dtype=X.dtype)
        self.grad_intercept = np.empty(n_params, dtype=X.dtype)

    def _sparse_saga_compiled(self, optimizer, saga, penalty):
        """Whether SAGA on this CSR X runs compiled: plain steps, no L1 part."""
        return (
            self.sparse
            and self._kernels is not None
            and saga is not None
            and compiled_sparse_rule(optimizer, penalty, saga=True)
        )

    def _sparse_momentum_compiled(self, optimizer, saga, penalty):
        """Whether momentum on this CSR X runs compiled: no L1 part."""
        return (
            self.sparse
            and self._kernels is not None
            and saga is None
            and compiled_sparse_rule(optimizer, penalty)
            and bool(optimizer.momentum)
        )

    def lazy_sparse(self, optimizer, saga=None):
        """Whether :meth:`run_epoch` takes a lazy sparse epoch: CSR X, and a step rule
        that moves only the batch's own features."""
        moves_every_weight = optimizer.moves_every_weight or (
            saga is not None and saga.moves_every_weight
        )
        return self.sparse and not moves_every_weight

    def screens_nonfinite_rows(self, coef):
        """Whether :meth:`run_epoch` rejects a row of X holding NaN or infinity itself.

        True for the compiled dense epoch: it checks every logit it computes
        (NaN or infinity in a row makes one of its logits NaN or infinite, and
        the fast-math flags keep NaN), and stops with a DivergenceError before
        that row's batch changes ``coef``. The caller may then skip its own
        pass over X and look for the cause only when training fails.
        """
        return self._dense_compiled_for(coef)

    def _dense_compiled_for(self, coef):
        # Through the estimator dense training always has C-ordered coef.
        return self.compiled and not self.sparse and coef.flags.c_contiguous

    def logits_function(self, coef):
        """A ``logits`` for :func:`sksoftmax._loss.objective_in_chunks`, or None for
        its default: the compiled CSR product where the sparse epochs are compiled
        and ``coef.T`` is C-ordered (sparse training keeps it so)."""
        if not (self.sparse and self._kernels is not None and coef.T.flags.c_contiguous):
            return None
        kernels = self._kernels

        def logits(X, part, coef, intercept):
            if not isinstance(part, slice):
                return np.asarray(X[part] @ coef.T) + intercept
            start, stop = part.start, part.stop
            Z = np.empty((stop - start, coef.shape[0]), dtype=coef.dtype)
            intercept = np.ascontiguousarray(intercept, dtype=coef.dtype)
            kernels.csr_logits(X.data, X.indices, X.indptr, start, stop, coef.T, intercept, Z)
            return Z

        return logits

    def blas_threads(self):
        """BLAS threads worth using: 1 for batch-sized products, else the default (None).

        A product of a few MFLOP gains little from a second thread and, measured
        on a 2-core machine, became 4-8x slower when another process was busy.
        """
        n_params, n_features = self.grad_coef.shape
        work = self.batch_size * n_features * n_params
        return 1 if work < SMALL_PRODUCT_FLOPS else None

    def residual_(self, Z_t, y, weights):
        """Turn transposed logits into ``w_i * (P - Y)`` in place; return ``sum_i w_i * CE_i``.

        Parameters
        ----------
        Z_t : ndarray of shape (n_params, m)
            Logits of the batch, one column per sample; overwritten by the
            transposed residual.
        y : ndarray of shape (m,)
            Class indices.
        weights : ndarray of shape (m,) or None
            Per-sample scale (sample weight over its mean); None means ones.

        Returns
        -------
        loss_sum : float
        """
        m = Z_t.shape[1]
        if self.binary:
            z = Z_t[0]
            # log(1 + exp(z)) - y z, the binary cross-entropy from the logit
            ce = np.logaddexp(0.0, z)
            ce -= np.where(y == 1, z, 0.0)
            expit(z, out=z)
            z -= y
        else:
            rows = self.rows[:m]
            row_max = self.row_max[:m]
            row_sum = self.row_sum[:m]
            true_logit = self.true_logit[:m]
            np.maximum.reduce(Z_t, axis=0, out=row_max)
            Z_t -= row_max
            true_logit[...] = Z_t[y, rows]
            np.exp(Z_t, out=Z_t)
            np.add.reduce(Z_t, axis=0, out=row_sum)
            Z_t /= row_sum
            Z_t[y, rows] -= 1.0
            np.log(row_sum, out=row_sum)
            ce = np.subtract(row_sum, true_logit, out=row_sum)
        if weights is None:
            return float(ce.sum(dtype=np.float64))
        Z_t *= weights
        return float(np.dot(weights.astype(np.float64), ce.astype(np.float64)))

    def _batches(self, X, y, weights, order):
        """Yield ``(rows, batch_X, batch_y, batch_w)`` for the rows of ``order``, in order.

        Unshuffled dense batches are views of ``X``; shuffled ones are gathered
        into one reusable buffer, so the dense batch is only valid until the next.
        """
        n_rows = X.shape[0] if order is None else len(order)
        for start in range(0, n_rows, self.batch_size):
            stop = min(start + self.batch_size, n_rows)
            if order is None:
                rows = slice(start, stop)
                batch_X = X[rows]
            else:
                rows = order[start:stop]
                if self.sparse:
                    batch_X = X[rows]
                else:
                    # mode='clip' because take() buffers `out` under the default
                    # mode='raise'; order holds valid row numbers only.
                    if self.batch_X is None:  # a compiled engine falling back to numpy
                        rows_per_batch = min(self.batch_size, X.shape[0])
                        self.batch_X = np.empty((rows_per_batch, X.shape[1]), X.dtype)
                    out = self.batch_X[: stop - start]
                    batch_X = np.take(X, rows, axis=0, out=out, mode="clip")
            yield rows, batch_X, y[rows], None if weights is None else weights[rows]

    def _residual_from_logits(self, Z, y, weights, optimizer):
        """Check the batch's logits, turn them into the scaled residual, return the loss.

        Parameters
        ----------
        Z : ndarray of shape (m, n_params)
            Logits with the intercept added.
        y, weights : ndarray of shape (m,)
        optimizer : SGDOptimizer
            Only named in the error messages.

        Returns
        -------
        Z_t : ndarray of shape (n_params, m)
            ``w_i * (P - Y) / batch_size``, transposed: the factor of X in the
            gradient.
        loss_sum : float
            ``sum_i w_i * CE_i`` over the batch.
        """
        m = Z.shape[0]
        if self.binary:
            Z_t = Z.T
        else:
            Z_t = self.logits_t if m == self.batch_size else np.empty((Z.shape[1], m), Z.dtype)
            Z_t[...] = Z.T
        _check_logits(Z, optimizer)
        loss_sum = self.residual_(Z_t, y, weights)
        if not np.isfinite(loss_sum):
            raise DivergenceError(f"non-finite loss after {optimizer.t} samples")
        # 1 / batch_size, not 1 / m: a ragged last batch takes a step in proportion
        # to its size, so every sample weighs the same in an epoch (a mean over the
        # 5 rows left after 14 x 128 made the last step of each epoch on digits
        # ~25x noisier than the others).
        Z_t *= 1.0 / self.batch_size
        return Z_t, loss_sum

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
        fit_intercept : bool
        penalty : Penalty, default=None
            The penalty on ``coef``: its L2 part enters the gradient, its L1 part
            follows each step (soft-thresholding under SAGA, the cumulative
            penalty otherwise). None: ``Penalty(alpha)``, L2 of strength ``alpha``.
        alpha : float, default=None
            Only when ``penalty`` is None.
        stop_requested : callable or None
            Polled after each batch; a true answer ends the epoch early.
        offset : ndarray of shape (n_features,) or None
            Train on the implicitly centred rows ``x_i - offset`` (``intercept``
            is then the centred model's, ``intercept - coef @ offset`` the
            published one). Nothing is copied: the logits take the intercept
            ``intercept - coef @ offset`` and the gradient of ``coef`` loses
            ``grad_intercept x offset``, a rank-one term; the sparse epochs keep
            that term pending, as they keep the L2 shrinkage, so that a batch
            still costs O(nnz).
        saga : SAGAMemory or None
            Step along SAGA's variance-reduced direction (on CSR with lagged
            updates in the compiled engine, else through the numpy epoch's dense
            update of the weights).

        Returns
        -------
        loss_sum : float
            ``sum_i w_i * CE_i`` over the visited rows, each taken before its
            batch's update.
        n_seen : int
            Rows visited (fewer than ``len(order)`` only if stopped early).
        """
        if penalty is None:
            penalty = Penalty(0.0 if alpha is None else alpha)
        epoch = _Epoch(
            X, y, weights, order, coef, intercept, optimizer, penalty, fit_intercept,
            stop_requested, offset, saga,
        )  # fmt: skip
        path = self.path(coef, optimizer, saga, penalty)
        if path in ("compiled sparse", "lazy sparse") and penalty.l1 and offset is not None:
            raise ValueError(
                "The lazy sparse epoch cannot centre X under an L1 penalty: "
                "the centring's rank-one term would move every weight at every step."
            )
        run = {
            "compiled dense": self._run_compiled_epoch,
            "compiled sparse saga": self._run_compiled_sparse_saga_epoch,
            "compiled sparse momentum": self._run_compiled_sparse_momentum_epoch,
            "compiled sparse": self._run_sparse_epoch,
            "lazy sparse": self._run_sparse_epoch,
            "numpy": self._run_numpy_epoch,
        }[path]
        return run(epoch)

    def path(self, coef, optimizer, saga=None, penalty=None):
        """The epoch :meth:`run_epoch` runs, chosen from X and what the step rule needs.

        "compiled dense" (dense X, numba), "compiled sparse" / "lazy sparse" (CSR
        and a step rule that moves only the batch's features: plain SGD,
        compiled or numpy), or "numpy", the reference, which does everything
        (momentum, averaging, SAGA, on dense X or CSR) and calls the step rule's
        own methods. A step rule declares what it needs by ``moves_every_weight``,
        and whether the engines' epochs implement it by ``kernels_implement``.
        SAGA on CSR is compiled as "compiled sparse saga" (lagged updates) for
        plain steps and an L2 penalty, and momentum as "compiled sparse
        momentum" (each feature's missed steps as one 3 x 3 map of its weight,
        velocity and average, just in time) without an L1 part.
        """
        if not getattr(optimizer, "kernels_implement", True):
            return "numpy"  # a rule of its own: the epoch that calls it
        if self._dense_compiled_for(coef):
            return "compiled dense"
        if self._sparse_saga_compiled(optimizer, saga, penalty):
            return "compiled sparse saga"
        if self._sparse_momentum_compiled(optimizer, saga, penalty):
            return "compiled sparse momentum"
        if self.lazy_sparse(optimizer, saga):
            return "compiled sparse" if self._kernels is not None else "lazy sparse"
        return "numpy"

    def _run_numpy_epoch(self, epoch):
        """:meth:`run_epoch` in numpy, for any X and step rule: the reference."""
        X, y, weights, order = epoch.X, epoch.y, epoch.weights, epoch.order
        coef, intercept, optimizer = epoch.coef, epoch.intercept, epoch.optimizer
        penalty, fit_intercept = epoch.penalty, epoch.fit_intercept
        stop_requested, offset, saga = epoch.stop_requested, epoch.offset, epoch.saga
        if self.grad_coef.flags.c_contiguous != coef.flags.c_contiguous:
            # Fortran-ordered coef (sparse training): full-size scratch in the same
            # order, or every per-batch update over the weights is strided.
            self.grad_coef = np.empty_like(coef)
            self.penalty_grad = np.empty_like(coef)
        # The intercept always goes through the optimiser (with a zero gradient when
        # it is not fitted) so that momentum and average buffers line up with params.
        params = [coef, intercept]
        grads = [self.grad_coef, self.grad_intercept]
        loss_sum = 0.0
        n_seen = 0
        for rows, batch_X, batch_y, batch_w in self._batches(X, y, weights, order):
            m = batch_X.shape[0]
            Z = self.logits[:m]
            if self.sparse:
                Z[...] = batch_X @ coef.T
            else:
                np.matmul(batch_X, coef.T, out=Z)
            Z += intercept if offset is None else intercept - coef @ offset
            Z_t, batch_loss = self._residual_from_logits(Z, batch_y, batch_w, optimizer)
            loss_sum += batch_loss
            if saga is not None:  # the gradient of the change in each row's residual
                change = Z_t.T - saga.residuals[rows]
                saga.residuals[rows] = Z_t.T
                Z_t[...] = change.T

            if self.sparse:
                self.grad_coef[...] = (batch_X.T @ Z_t.T).T
            else:
                np.matmul(Z_t, batch_X, out=self.grad_coef)
            if fit_intercept:
                np.add.reduce(Z_t, axis=1, out=self.grad_intercept)
            else:  # zeroed per batch: the step rule uses the buffers as scratch
                self.grad_intercept[...] = 0.0
            if offset is not None:
                self.grad_coef -= np.outer(self.grad_intercept, offset)
            share = m / self.batch_size
            if saga is not None:
                saga.direction_(self.grad_coef, self.grad_intercept, share)
            if penalty.l2:
                np.multiply(coef, penalty.l2 * share, out=self.penalty_grad)
                self.grad_coef += self.penalty_grad
            optimizer.step(params, grads, m, l1=penalty.l1 * share, proximal=saga is not None)
            n_seen += m
            if stop_requested is not None and stop_requested():
                break
        return loss_sum, n_seen

    def _run_sparse_epoch(self, epoch):
        """:meth:`run_epoch` for CSR ``X`` at a cost that follows the non-zeros.

        A batch reads and writes only the weights of its non-zero features. The
        L2 shrinkage of all the others is kept as one scalar and the centring's
        rank-one term as one vector, ``coef_true.T = scale * V - offset x
        pending`` with ``V`` the stored weights, folded back when the epoch ends
        (or earlier, before ``scale`` gets small). The logits of the centred
        rows then need ``offset . coef_true``, kept up to date as
        ``scale * offset_dot - |offset|^2 pending`` with ``offset_dot = offset @
        V`` updated from each batch's own columns. During the epoch the weights
        live feature-major, ``(n_features, n_params)``, so a feature's weights
        are one cache line rather than ``n_params`` scattered ones. Plain or
        averaged SGD (the average kept lazily too); momentum moves every weight
        at every step and has epochs of its own (compiled, or the numpy epoch's
        dense update). The L1 part of the penalty is the
        cumulative one, applied to the batch's own features after its update
        (the others keep what they are owed until a batch touches them); it
        needs ``offset`` None.
        """
        X, y, weights, order = epoch.X, epoch.y, epoch.weights, epoch.order
        coef, intercept, optimizer = epoch.coef, epoch.intercept, epoch.optimizer
        penalty, fit_intercept = epoch.penalty, epoch.fit_intercept
        stop_requested, offset = epoch.stop_requested, epoch.offset
        in_place, weights_by_feature = self._feature_major(coef)
        lazy = _LazyCentring(weights_by_feature, offset)
        average = _LazyAverage(optimizer, coef, intercept, len(lazy.pending))
        if self._kernels is not None:
            return self._run_compiled_sparse_epoch(
                epoch, weights_by_feature, in_place, lazy, average
            )
        applied_by_feature = optimizer.l1_state(coef).T if penalty.l1 else None
        smallest = smallest_scale(optimizer, coef.dtype)
        loss_sum = 0.0
        n_seen = 0
        scale = 1.0
        try:
            for _rows, batch_X, batch_y, batch_w in self._batches(X, y, weights, order):
                m = batch_X.shape[0]
                # The batch as a matrix over its own non-zero columns only.
                cols, local = np.unique(batch_X.indices, return_inverse=True)
                batch_X = sp.csr_matrix(
                    (batch_X.data, local.ravel(), batch_X.indptr), shape=(m, len(cols))
                )
                active = weights_by_feature[cols]  # (n_active, n_params), a copy

                Z = self.logits[:m]
                Z[...] = batch_X @ active
                Z *= scale
                Z += intercept
                if lazy.centred:
                    lazy.centre_logits(Z, batch_X, cols, scale)
                Z_t, batch_loss = self._residual_from_logits(Z, batch_y, batch_w, optimizer)
                loss_sum += batch_loss

                eta = optimizer.current_eta()
                share = m / self.batch_size
                decay = penalty.decay(eta, share)
                if decay <= 0.5:  # a step this large makes the scalar shrinkage unstable
                    average.rescale(weights_by_feature, scale * decay)
                    weights_by_feature *= scale * decay
                    active *= scale * decay
                    lazy.rescale(scale * decay)
                    scale = 1.0
                else:
                    scale *= decay
                lazy.pending *= decay
                step = batch_X.T @ Z_t.T
                before = active.copy() if average.tracks(optimizer, m) else None
                active -= (eta / scale) * step
                if penalty.l1:
                    optimizer.accrue_l1(eta * penalty.l1 * share)
                    applied = applied_by_feature[cols]
                    cumulative_l1_(active, applied, optimizer.l1_total, scale)
                    applied_by_feature[cols] = applied
                if before is not None:
                    average.moved(cols, active - before)
                weights_by_feature[cols] = active
                grad_intercept = np.add.reduce(Z_t, axis=1)
                if lazy.centred:
                    lazy.update(step, cols, grad_intercept, eta, scale)
                if fit_intercept:
                    intercept -= eta * grad_intercept
                optimizer.advance(m)
                average.after_step(optimizer, scale, lazy.pending, intercept)
                if scale < smallest:
                    average.rescale(weights_by_feature, scale)
                    weights_by_feature *= scale
                    lazy.rescale(scale)
                    scale = 1.0
                n_seen += m
                if stop_requested is not None and stop_requested():
                    break
        finally:
            average.fold(optimizer, weights_by_feature, lazy)
            _fold_shrinkage(weights_by_feature, in_place, coef, scale)
            lazy.fold(coef)
        return loss_sum, n_seen

    def _feature_major(self, coef):
        """``(in_place, weights_by_feature)``: ``coef.T`` as a C-ordered array, which is
        ``coef.T`` itself for Fortran-ordered coef (sparse training keeps it so)."""
        if coef.T.flags.c_contiguous:
            return True, coef.T
        # Allocated once per engine: a fresh array each epoch costs page faults.
        if self._weights_by_feature is None:
            self._weights_by_feature = np.empty(coef.shape[::-1], dtype=coef.dtype)
        self._weights_by_feature[...] = coef.T
        return False, self._weights_by_feature

    def _run_compiled_sparse_saga_epoch(self, epoch):
        """:meth:`run_epoch` with SAGA on CSR, by ``_compiled.sparse_saga_epoch_chunk``.

        The numpy epoch updates every weight at every batch (the mean gradient
        moves them all); this one takes each feature's mean-gradient steps just
        in time, when a batch reads it or the epoch ends, so a batch costs
        O(nnz). Same epochs to rounding.
        """
        X, y, weights, order = epoch.X, epoch.y, epoch.weights, epoch.order
        coef, intercept, optimizer = epoch.coef, epoch.intercept, epoch.optimizer
        saga, offset = epoch.saga, epoch.offset
        compiled = self._kernels
        in_place, weights_by_feature = self._feature_major(coef)
        lazy = _LazyCentring(weights_by_feature, offset)
        y, weights, order = self._compiled_inputs(X, y, weights, order)
        n_rows = len(order)
        mean_by_feature = saga.mean_grad_coef.T
        mean_offset_dot = np.zeros(coef.shape[0])
        if lazy.centred:  # the mean without the centring's rank-one part
            mean_by_feature += np.multiply.outer(lazy.offset, saga.mean_grad_intercept)
            mean_offset_dot = lazy.offset.astype(np.float64) @ mean_by_feature
        drift = np.zeros(-(-n_rows // self.batch_size) + 1)
        last_step = np.zeros(coef.shape[1], dtype=np.int64)
        step_state = np.zeros(1, dtype=np.int64)
        chunk = self._sparse_chunk_rows(X, coef)
        counters = np.array([optimizer.t, optimizer.n_averaged], dtype=np.int64)
        shrinkage = np.ones(1)
        schedule = _schedule_arguments(compiled, optimizer, epoch.penalty)

        def kernel_call(start, stop):
            return compiled.sparse_saga_epoch_chunk(
                X.data, X.indices, X.indptr, y, weights, order, start, stop, self.batch_size,
                weights_by_feature, shrinkage, lazy.offset, lazy.pending, lazy.offset_dot,
                lazy.offset_sq_norm, intercept, self.logits, saga.residuals, mean_by_feature,
                saga.mean_grad_intercept, float(saga.factor), mean_offset_dot, drift, last_step,
                step_state, counters, *schedule, bool(epoch.fit_intercept), float(MAX_LOGIT),
            )  # fmt: skip

        try:
            return self._run_chunks(epoch, n_rows, chunk, counters, kernel_call)
        finally:
            compiled.saga_catch_up(
                weights_by_feature, mean_by_feature, drift, last_step, int(step_state[0])
            )
            if lazy.centred:
                mean_by_feature -= np.multiply.outer(lazy.offset, saga.mean_grad_intercept)
            _fold_shrinkage(
                weights_by_feature, in_place, coef, shrinkage[0], compiled.transpose_scaled
            )
            lazy.fold(coef)

    def _run_compiled_sparse_momentum_epoch(self, epoch):
        """:meth:`run_epoch` with momentum on CSR, by
        ``_compiled.sparse_momentum_epoch_chunk``.

        The numpy epoch updates every weight, velocity and average at every
        batch; this one takes a feature's missed steps (a 3 x 3 map of each of
        its (weight, velocity, average) triples) just in time, when a batch
        reads it or the epoch ends, so a batch costs O(nnz). Same epochs to
        rounding.
        """
        X, y, weights, order = epoch.X, epoch.y, epoch.weights, epoch.order
        coef, intercept, optimizer = epoch.coef, epoch.intercept, epoch.optimizer
        compiled = self._kernels
        if optimizer.velocities is None:
            optimizer.velocities = [np.zeros_like(coef), np.zeros_like(intercept)]
        in_place, weights_by_feature = self._feature_major(coef)
        velocity = _FeatureMajor(optimizer.velocities[0], epoch.offset)
        lazy = _LazyCentring(weights_by_feature, epoch.offset)
        if optimizer.averaging:
            average = _FeatureMajor(optimizer.averages[0], epoch.offset)
            average_arrays = (average.by_feature, optimizer.averages[1], average.lazy.pending)
        else:
            average = None
            average_arrays = (None, np.empty(0, intercept.dtype), np.zeros(0))
        y, weights, order = self._compiled_inputs(X, y, weights, order)
        n_rows = len(order)
        n_steps = min(-(-n_rows // self.batch_size), MOMENTUM_TABLE_STEPS)
        level_start, table_rows = compiled.step_products_layout(n_steps)
        products = np.empty((max(1, table_rows), compiled.MAP_SIZE))
        memo = np.empty((n_steps + 1, compiled.MAP_SIZE))
        memo_at = np.full(n_steps + 1, -1, dtype=np.int64)
        last_step = np.zeros(coef.shape[1], dtype=np.int64)
        step_state = np.zeros(1, dtype=np.int64)
        chunk = self._sparse_chunk_rows(X, coef)
        counters = np.array([optimizer.t, optimizer.n_averaged], dtype=np.int64)
        schedule = _schedule_arguments(compiled, optimizer, epoch.penalty)

        def kernel_call(start, stop):
            return compiled.sparse_momentum_epoch_chunk(
                X.data, X.indices, X.indptr, y, weights, order, start, stop, self.batch_size,
                weights_by_feature, velocity.by_feature, average_arrays[0], intercept,
                optimizer.velocities[1], average_arrays[1], lazy.offset, lazy.pending,
                velocity.lazy.pending, average_arrays[2], lazy.offset_dot,
                velocity.lazy.offset_dot, lazy.offset_sq_norm, self.logits, products, level_start,
                memo, memo_at, last_step, step_state, counters, float(optimizer.momentum),
                bool(optimizer.nesterov), int(optimizer.average_start), n_steps, *schedule,
                bool(epoch.fit_intercept), float(MAX_LOGIT),
            )  # fmt: skip

        try:
            return self._run_chunks(epoch, n_rows, chunk, counters, kernel_call)
        finally:
            compiled.momentum_catch_up(
                weights_by_feature, velocity.by_feature, average_arrays[0], products,
                level_start, memo, memo_at, last_step, int(step_state[0]),
            )  # fmt: skip
            _fold_shrinkage(weights_by_feature, in_place, coef, 1.0, compiled.transpose_scaled)
            lazy.fold(coef)
            velocity.fold()
            if average is not None:
                average.fold()

    def _run_chunks(self, epoch, n_rows, chunk, counters, kernel_call):
        """A compiled epoch's loop over chunks of rows: ``kernel_call(start, stop)``
        runs the batches of ``order[start:stop]`` and returns ``(loss_sum, n_seen,
        status)``. After each call the optimiser takes the kernel's ``counters``
        (``t``, ``n_averaged``; also however the loop ends: the kernel writes them
        after every batch, so a KeyboardInterrupt raised as it returns cannot
        separate them from the weights), a divergence raises, and Ctrl-C is
        polled. Returns ``(loss_sum, n_seen)``."""
        optimizer = epoch.optimizer
        loss_sum, n_seen = 0.0, 0
        try:
            for start in range(0, n_rows, chunk):
                chunk_loss, chunk_seen, status = kernel_call(start, min(start + chunk, n_rows))
                optimizer.t, optimizer.n_averaged = int(counters[0]), int(counters[1])
                loss_sum += chunk_loss
                n_seen += chunk_seen
                _raise_for_status(self._kernels, status, optimizer)
                if epoch.stop_requested is not None and epoch.stop_requested():
                    break
        finally:
            optimizer.t, optimizer.n_averaged = int(counters[0]), int(counters[1])
        return loss_sum, n_seen

    def _sparse_chunk_rows(self, X, coef):
        """Rows per call of a compiled sparse epoch: whole batches, about
        ``COMPILED_CHUNK_WORK`` multiply-adds (Ctrl-C is polled between calls)."""
        nnz_per_row = max(1.0, X.nnz / max(1, X.shape[0]))
        rows_by_work = int(COMPILED_CHUNK_WORK // (2 * nnz_per_row * coef.shape[0]))
        return self.batch_size * max(1, min(COMPILED_CHUNK_ROWS, rows_by_work) // self.batch_size)

    def _compiled_inputs(self, X, y, weights, order):
        """``y``, ``weights`` and ``order`` as the compiled epochs take them.

        One array type each (intp labels and rows, weights in X's dtype, empty
        for none), so that no call compiles another variant.
        """
        y = np.ascontiguousarray(y, dtype=np.intp)
        if weights is None:
            weights = np.empty(0, self.dtype)
        else:
            weights = np.ascontiguousarray(weights, self.dtype)
        order = np.arange(X.shape[0]) if order is None else np.ascontiguousarray(order, np.intp)
        return y, weights, order

    def _run_compiled_sparse_epoch(self, epoch, weights_by_feature, in_place, lazy, average):
        """:meth:`_run_sparse_epoch` by :func:`sksoftmax._compiled.sparse_epoch_chunk`.

        ``weights_by_feature`` holds ``coef.T`` on entry (is ``coef.T`` when
        ``in_place``); ``coef`` gets the result, shrinkage folded in, however
        the epoch ends.
        """
        X, y, weights, order = epoch.X, epoch.y, epoch.weights, epoch.order
        coef, intercept, optimizer = epoch.coef, epoch.intercept, epoch.optimizer
        penalty, fit_intercept = epoch.penalty, epoch.fit_intercept
        compiled = self._kernels
        y, weights, order = self._compiled_inputs(X, y, weights, order)
        n_rows = len(order)
        chunk = self._sparse_chunk_rows(X, coef)
        counters = np.array([optimizer.t, optimizer.n_averaged], dtype=np.int64)
        shrinkage = np.ones(1)
        l1_applied, l1_total = _l1_arguments(optimizer, coef, penalty, transposed=True)
        hyperparameters = (
            *_schedule_arguments(compiled, optimizer, penalty),
            float(penalty.l1),
            bool(optimizer.averaging),
            int(optimizer.average_start),
            float(smallest_scale(optimizer, coef.dtype)),
            bool(fit_intercept),
            float(MAX_LOGIT),
        )

        def kernel_call(start, stop):
            return compiled.sparse_epoch_chunk(
                X.data,
                X.indices,
                X.indptr,
                y,
                weights,
                order,
                start,
                stop,
                self.batch_size,
                weights_by_feature,
                shrinkage,
                lazy.offset,
                lazy.pending,
                lazy.offset_dot,
                lazy.offset_sq_norm,
                intercept,
                self.logits,
                self.grad_intercept,
                l1_applied,
                l1_total,
                average.sums,
                average.state,
                average.pending_mean,
                average.intercept,
                counters,
                *hyperparameters,
            )

        try:
            return self._run_chunks(epoch, n_rows, chunk, counters, kernel_call)
        finally:
            if penalty.l1:
                optimizer.l1_total = float(l1_total[0])
            average.fold(optimizer, weights_by_feature, lazy)
            _fold_shrinkage(
                weights_by_feature, in_place, coef, shrinkage[0], compiled.transpose_scaled
            )
            lazy.fold(coef)

    def _run_compiled_epoch(self, epoch):
        """:meth:`run_epoch` for dense X by :func:`sksoftmax._compiled.dense_epoch_chunk`.

        The same batches, residual scaling and optimiser update as the numpy
        loop; Ctrl-C is polled after each chunk of batches (``COMPILED_CHUNK_ROWS``
        and ``COMPILED_CHUNK_WORK``) instead of after every batch.
        """
        X, y, weights, order = epoch.X, epoch.y, epoch.weights, epoch.order
        coef, intercept, optimizer = epoch.coef, epoch.intercept, epoch.optimizer
        penalty, fit_intercept = epoch.penalty, epoch.fit_intercept
        offset, saga = epoch.offset, epoch.saga
        compiled = self._kernels
        y, weights, order = self._compiled_inputs(X, y, weights, order)
        n_rows = len(order)
        dtype = self.dtype
        if optimizer.momentum and optimizer.velocities is None:
            optimizer.velocities = [np.zeros_like(coef), np.zeros_like(intercept)]
        no_buffers = [np.empty((0, 0), dtype), np.empty(0, dtype)]
        velocities = optimizer.velocities if optimizer.momentum else no_buffers
        averages = optimizer.averages if optimizer.averaging else no_buffers
        offset = np.empty(0, dtype) if offset is None else np.asarray(offset, dtype)
        if saga is None:
            memory, saga_factor = [np.empty((0, 0), dtype), *no_buffers], 0.0
        else:
            memory = [saga.residuals, saga.mean_grad_coef, saga.mean_grad_intercept]
            saga_factor = saga.factor
        effective_intercept = np.empty_like(intercept)
        rows_by_work = COMPILED_CHUNK_WORK // (2 * coef.size)
        chunk = self.batch_size * max(1, min(COMPILED_CHUNK_ROWS, rows_by_work) // self.batch_size)
        counters = np.array([optimizer.t, optimizer.n_averaged], dtype=np.int64)
        # SAGA's L1 part is the prox, which keeps no state.
        l1_applied, l1_total = _l1_arguments(optimizer, coef, penalty if saga is None else None)
        hyperparameters = (
            *_schedule_arguments(compiled, optimizer, penalty),
            float(penalty.l1),
            saga is not None,
            float(optimizer.momentum),
            bool(optimizer.nesterov),
            bool(optimizer.averaging),
            int(optimizer.average_start),
            bool(fit_intercept),
            float(MAX_LOGIT),
        )

        def kernel_call(start, stop):
            return compiled.dense_epoch_chunk(
                X,
                y,
                weights,
                order,
                start,
                stop,
                self.batch_size,
                coef,
                intercept,
                velocities[0],
                velocities[1],
                averages[0],
                averages[1],
                offset,
                effective_intercept,
                *memory,
                saga_factor,
                self.logits,
                self.grad_coef,
                self.grad_intercept,
                l1_applied,
                l1_total,
                counters,
                *hyperparameters,
            )

        try:
            return self._run_chunks(epoch, n_rows, chunk, counters, kernel_call)
        finally:
            if penalty.l1 and saga is None:
                optimizer.l1_total = float(l1_total[0])


class _Epoch:
    """What one epoch of :meth:`EpochEngine.run_epoch` works on (see its parameters)."""

    def __init__(
        self, X, y, weights, order, coef, intercept, optimizer, penalty, fit_intercept,
        stop_requested, offset, saga,
    ):  # fmt: skip
        self.X, self.y, self.weights, self.order = X, y, weights, order
        self.coef, self.intercept, self.optimizer = coef, intercept, optimizer
        self.penalty, self.fit_intercept = penalty, fit_intercept
        self.stop_requested, self.offset, self.saga = stop_requested, offset, saga


class _LazyAverage:
    r"""The sparse epochs' running average of the weights, at a cost that follows the non-zeros.

    The representation of averaged SGD on sparse data (Xu, 2011), as
    scikit-learn's ``WeightVector.add_average``: with ``V`` the stored weights
    (true weights ``scale * V``), the average of ``scale * V`` is ``(sums + a V)
    / b``. A step that moves ``V[cols]`` by ``delta`` takes ``a * delta`` off
    ``sums[cols]``; folding the ``n``-th iterate in (``mu = 1 / n``) divides
    ``b`` by ``1 - mu`` and adds ``mu * scale * b`` to ``a``. Before a rescaling
    of ``V`` the average is settled into ``sums`` (``a = 0, b = 1``), as
    scikit-learn's ``reset_wscale`` does: ``a`` grows as ``1 / scale``, and kept
    across rescalings it made ``sums + a V`` a difference of huge numbers
    (errors of 1e5 on averages of 0.2 after 500 batches at a decay of 0.9). The
    centring's pending term and the intercept, ``n_params`` values each, are
    averaged as they are. While ``t <= average`` the average is the iterate
    itself (``sums = 0, a = scale, b = 1``: *copying*). Without averaging every
    array is empty. The sparse epochs rescale sooner when averaging float32
    weights (:func:`smallest_scale`): the rounding of ``V`` enters the average
    multiplied by ``a / b``, up to ``1 / scale``.

    ``state`` is ``[a, b, copying]``, the array the compiled epoch shares.

    Parameters
    ----------
    optimizer : SGDOptimizer
        Its ``averages`` hold the average on entry, and get it at :meth:`fold`.
    coef, intercept : ndarray
        The weights (the averages' templates, when the optimiser has none yet).
    n_pending : int
        Length of the centring's pending term (0: not centred).
    """

    def __init__(self, optimizer, coef, intercept, n_pending):
        self.on = optimizer.averaging
        if not self.on:
            self.sums, self.state = np.empty((0, 0)), np.array([0.0, 1.0, 0.0])
            self.pending_mean, self.intercept = np.zeros(0), np.empty(0, coef.dtype)
            return
        if optimizer.averages is None:
            optimizer.averages = [coef.copy(order="K"), intercept.copy()]
        averaging = optimizer.n_averaged >= 1 and optimizer.t > optimizer.average_start
        # float64: the sums gather a * delta over the steps between settlings.
        if averaging:
            self.sums = np.array(optimizer.averages[0].T, dtype=np.float64, order="C")
            self.state = np.array([0.0, 1.0, 0.0])
        else:
            self.sums = np.zeros(coef.shape[::-1])
            self.state = np.array([1.0, 1.0, 1.0])
        self.pending_mean = np.zeros(n_pending)
        self.intercept = optimizer.averages[1]

    def tracks(self, optimizer, n_rows):
        """Whether the next step (of ``n_rows``) folds its iterate into a running average,
        so that its moves of ``V`` enter the sums."""
        return (
            self.on
            and optimizer.n_averaged >= 1
            and optimizer.t + n_rows > optimizer.average_start
        )

    def moved(self, cols, delta):
        """``V[cols]`` moved by ``delta`` (n_active, n_params)."""
        self.sums[cols] -= self.state[0] * delta

    def rescale(self, weights_by_feature, factor):
        """Before ``V *= factor`` (``factor`` may be 0): settle the average into the
        sums, which are then no longer zero (not *copying*)."""
        if not self.on:
            return
        self.sums += self.state[0] * weights_by_feature
        self.sums /= self.state[1]
        self.state[:] = (0.0, 1.0, 0.0)

    def after_step(self, optimizer, scale, pending, intercept):
        """Fold the iterate the step reached into the average (``optimizer.t`` counted),
        as ``SGDOptimizer.step`` does: copy it while ``t <= average``."""
        if not self.on:
            return
        copying = optimizer.t <= optimizer.average_start
        if not copying:
            optimizer.n_averaged += 1
        n = optimizer.n_averaged
        if copying or n == 1:  # the iterate itself
            if copying and not self.state[2]:
                self.sums[...] = 0.0  # settled by a rescaling, or average_start was raised
            self.state[:] = (scale, 1.0, float(copying))
            self.pending_mean[...] = pending
            self.intercept[...] = intercept
            return
        mu = 1.0 / n
        self.state[1] /= 1.0 - mu
        self.state[0] += mu * scale * self.state[1]
        self.state[2] = 0.0
        self.pending_mean += mu * (pending - self.pending_mean)
        self.intercept += (intercept - self.intercept) * mu

    def fold(self, optimizer, weights_by_feature, lazy):
        """Write the average into ``optimizer.averages[0]``; before the shrinkage and
        the centring are folded into the weights."""
        if not self.on:
            return
        a, b = self.state[:2]
        average = self.sums + a * weights_by_feature
        average /= b
        if lazy.centred:
            average -= np.multiply.outer(lazy.offset, self.pending_mean)
        optimizer.averages[0][...] = average.T


class _LazyCentring:
    """The sparse epochs' pending rank-one term of centring, ``- offset x pending``.

    See :meth:`EpochEngine._run_sparse_epoch`: ``coef_true.T = scale * V -
    outer(offset, pending)``, and ``offset_dot = offset @ V`` (``(n_params,)``)
    gives the logits' ``offset . coef_true`` without a pass over the weights.
    Without an offset every array is empty and nothing happens.
    """

    def __init__(self, weights_by_feature, offset):
        dtype = weights_by_feature.dtype
        self.centred = offset is not None
        n_params = weights_by_feature.shape[1] if self.centred else 0
        self.offset = np.empty(0, dtype) if offset is None else np.asarray(offset, dtype)
        self.pending = np.zeros(n_params)  # float64: a sum over the epoch's steps
        self.offset_dot = (
            self.offset.astype(np.float64) @ weights_by_feature if self.centred else np.zeros(0)
        )
        self.offset_sq_norm = float(self.offset.astype(np.float64) @ self.offset)

    def centre_logits(self, Z, batch_X, cols, scale):
        """Turn logits ``x . coef_true + b`` into those of the centred rows."""
        x_dot_offset = np.asarray(batch_X @ self.offset[cols].astype(np.float64)).ravel()
        Z -= np.outer(x_dot_offset, self.pending)
        Z -= scale * self.offset_dot - self.offset_sq_norm * self.pending

    def update(self, step, cols, grad_intercept, eta, scale):
        """After ``V[cols] -= (eta / scale) * step``: follow it in offset_dot, and add
        the rank-one step to ``pending``."""
        self.offset_dot -= (eta / scale) * (self.offset[cols].astype(np.float64) @ step)
        self.pending -= eta * grad_intercept

    def rescale(self, factor):
        """``V *= factor`` happened (the shrinkage was folded into it)."""
        self.offset_dot *= factor

    def fold(self, coef, block=2**16):
        """``coef -= outer(pending, offset)``, by blocks of features: the whole
        outer product was a float64 temporary of the model's size (32 MB at
        200,000 features x 20 classes) in every epoch."""
        if self.centred:
            pending = self.pending.astype(coef.dtype)
            for start in range(0, coef.shape[1], block):
                part = slice(start, start + block)
                coef[:, part] -= np.multiply.outer(pending, self.offset[part])
            self.pending[...] = 0.0


class _FeatureMajor:
    """A buffer of coef's shape (a velocity, an average) as a sparse epoch keeps it:
    ``by_feature``, its transpose C-ordered (itself for a Fortran-ordered
    buffer, else a copy), and its centring's pending rank-one part (``lazy``);
    :meth:`fold` writes both back into the buffer."""

    def __init__(self, buffer, offset):
        self.buffer = buffer
        self.in_place = buffer.T.flags.c_contiguous
        self.by_feature = buffer.T if self.in_place else np.ascontiguousarray(buffer.T)
        self.lazy = _LazyCentring(self.by_feature, offset)

    def fold(self):
        if not self.in_place:
            self.buffer[...] = self.by_feature.T
        self.lazy.fold(self.buffer)


def _fold_shrinkage(weights_by_feature, in_place, coef, scale, transpose_scaled=None):
    """``coef = scale * weights_by_feature.T``; ``in_place``: the one is ``coef.T``."""
    if in_place:
        if scale != 1.0:
            weights_by_feature *= scale
    elif transpose_scaled is not None:
        transpose_scaled(weights_by_feature, coef, scale)
    else:
        np.multiply(weights_by_feature.T, scale, out=coef)


def _l1_arguments(optimizer, coef, penalty, transposed=False):
    """The cumulative L1 penalty's buffers for the compiled epochs: ``applied``
    (flat, or ``(n_features, n_params)`` when ``transposed``; empty without
    L1) and ``[total]``, float64."""
    if penalty is None or not penalty.l1:
        return np.empty((0, 0) if transposed else 0), np.zeros(1)
    applied = optimizer.l1_state(coef)
    applied = applied.T if transposed else applied.reshape(-1)
    return applied, np.array([float(optimizer.l1_total)])


def _schedule_arguments(compiled, optimizer, penalty):
    """The step-size arguments of the compiled epochs, as Python scalars.

    Plain float/int: a numpy scalar or an int alpha would compile another variant.
    """
    schedule = {
        "optimal": compiled.SCHEDULE_OPTIMAL,
        "invscaling": compiled.SCHEDULE_INVSCALING,
    }.get(optimizer.learning_rate, compiled.SCHEDULE_FIXED)
    return (
        schedule,
        float(optimizer.eta),
        float(optimizer.eta0),
        float(optimizer.power_t),
        float(penalty.l2),
        float(optimizer.alpha),
        float(optimizer.t0),
    )


def _raise_for_status(compiled, status, optimizer):
    if status == compiled.STATUS_LOGIT_OVERFLOW:
        raise DivergenceError(f"logits past {MAX_LOGIT:.0e} after {optimizer.t} samples")
    if status == compiled.STATUS_NONFINITE_LOSS:
        raise DivergenceError(f"non-finite loss after {optimizer.t} samples")


def _check_logits(Z, optimizer):
    # Two full reductions of a batch-sized array: cheap, and NaN fails both tests.
    if not (Z.max() < MAX_LOGIT and Z.min() > -MAX_LOGIT):
        raise DivergenceError(f"logits past {MAX_LOGIT:.0e} after {optimizer.t} samples")
