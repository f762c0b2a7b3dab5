"""What a fit watches between epochs: the stopping rule and the weights it keeps.

The engines run epochs; this module decides, from the exact training
objective after each epoch, whether to go on, to shrink the step, to go back
to the best weights seen, or to stop, so that a fit never returns a model
worse than it reached, nor calls a rising objective "converged".
"""

import copy
import math

import numpy as np

from ._array_api import is_xp, namespace_of, to_device, to_host
from ._optim import _f_ordered


class Snapshot:
    """A copy of the parameters and the optimiser buffers that go with them."""

    def __init__(self, params, optimizer):
        self.params = copy.deepcopy(params)
        self.averages = copy.deepcopy(optimizer.averages)
        self.velocities = copy.deepcopy(optimizer.velocities)
        self.n_averaged = optimizer.n_averaged
        self.l1_applied = copy.deepcopy(getattr(optimizer, "l1_applied", None))
        self.l1_total = getattr(optimizer, "l1_total", 0.0)

    def restore(self, params, optimizer):
        """Copy the saved state back into ``params`` (in place) and ``optimizer``."""
        for target, saved in zip(params, self.params, strict=True):
            target[...] = saved
        optimizer.averages = copy.deepcopy(self.averages)
        optimizer.velocities = copy.deepcopy(self.velocities)
        optimizer.n_averaged = self.n_averaged
        optimizer.l1_applied = copy.deepcopy(self.l1_applied)
        optimizer.l1_total = self.l1_total


class StoppingRule:
    """Patience on the exact training objective: stop once it is within ``tol`` of its limit.

    An epoch *improves* when what is left to gain, estimated from the last
    epochs' decrease, is at least ``tol * |best|``: with ``d_k`` the decrease of
    epoch ``k`` and ``rho`` its geometric rate over the last epochs (the linear
    convergence of SAGA, ``d_k = rho * d_{k-1}``), the objective has about
    ``d_k * rho / (1 - rho)`` left to fall. Measured on iris and digits, a rule
    on the decrease alone (``d_k < tol * |best|``) stopped 2-6x the tolerance
    short of the optimum where convergence is slow (rho = 0.94 per epoch). After
    ``n_iter_no_change`` epochs in a row that do not improve, the fit has
    *stalled*; whether the objective then sits above the best (it rose: the
    step is too large) or on a plateau decides what the caller does.

    Parameters
    ----------
    tol : float or None
        None: never stalls.
    n_iter_no_change : int
    start : float
        The objective before training, at the initial weights.
    relative : bool, default=True
        False: a plain patience rule, an improvement being a rise of the best by
        ``tol`` itself (validation scores, negated).
    extrapolate : bool, default=True
        False (plain SGD): an improvement is a decrease of at least ``tol *
        |best|`` itself. SGD's decrease is not geometric: it creeps towards a
        noise floor that only a smaller step lowers, so the extrapolated gain
        kept the adaptive step from shrinking (on a text-like CSR problem,
        26x longer to a gap of 1e-3).
    window : int, default=1
        With extrapolated iterates (:class:`Extrapolation`): once a jump was
        taken, the decrease of the best over the last ``window`` epochs counts
        as a gain too (of the best: an objective that swings or rises is no
        progress, however far above it stood ``window`` epochs before).
        Between jumps the epochs crawl (measured on iris at alpha=1e-4:
        2e-5 an epoch, then a jump of 8e-4), and the rule on each epoch alone
        stopped 1e-3 above the optimum. The window reaches back no further than
        the first jump: over the first epochs' fall it kept a CSR fit that had
        converged in 4 epochs going for 16. (Counting the jumps' gains alone
        stopped iris 1e-3 above the optimum again: its crawl is the progress.)
    """

    def __init__(
        self, tol, n_iter_no_change, start, relative=True, extrapolate=True, window=1
    ):
        self.tol = tol
        self.relative = relative
        self.extrapolate = extrapolate
        self.window = int(window)
        self.first_jump = None  # index in history of the value before the first jump
        self.bests = [start]  # the best so far after each entry of history
        self.n_iter_no_change = n_iter_no_change
        self.start = start
        self.best = start
        self.best_epoch = 0
        self.no_improvement = 0
        self.history = [start]

    def update(self, value, epoch, jumped=False):
        """Record the objective after ``epoch``; return True when it is the best so far.

        ``jumped``: ``value`` is at the extrapolated weights the epoch moved to.
        """
        if jumped and self.first_jump is None:
            self.first_jump = len(self.history) - 1
        if self.tol is None:
            improved = False
        elif self.relative:
            gain = self.left_to_gain(value) if self.extrapolate else self.best - value
            if self.first_jump is not None:
                since = max(len(self.history) - self.window, self.first_jump)
                gain = max(gain, self.bests[since] - min(self.best, value))
            improved = gain >= self.tol * abs(self.best)
        else:
            improved = value < self.best - self.tol
        self.history.append(value)
        self.bests.append(min(self.best, value))
        self.no_improvement = 0 if improved else self.no_improvement + 1
        if value < self.best:
            self.best, self.best_epoch = value, epoch
            return True
        return False

    def left_to_gain(self, value):
        """Estimated fall still to come after ``value``: ``d * rho / (1 - rho)``.

        From the values themselves while the last epochs fell (rises within
        ``tol`` aside), the shape of a geometric decrease; from the best so far,
        with ``rho`` at most 0.9, when they swing. An objective that swings
        from epoch to epoch (SAGA at a step too large for it: measured +-1.2e-3
        on digits at alpha=0.15) has decreases of similar size every other
        epoch, which extrapolated with rho near 1 looked like a large gain still
        to come, and the fit never stalled (1000 epochs at 2e-4 from the
        optimum, where the step should have been shrunk). Ignoring every swing
        instead shrank the step of proximal SAGA, which is not monotone but
        converges (pure L1 on digits: 5,000 epochs where 545 had done).
        """
        history = self.history[-self.n_iter_no_change :] + [value]
        max_rho = 0.999
        if self._swings(history):
            # The best so far falls as the iterate converges through its noise
            # (proximal SAGA is not monotone), or hardly at all when the step is
            # too large: extrapolate the best, over at most 9 epochs' worth.
            history = list(np.minimum.accumulate(np.asarray(history, dtype=float)))
            max_rho = 0.9
        last = history[-2] - history[-1]
        if not last > 0:
            return 0.0
        first = history[0] - history[1]
        steps = len(history) - 2
        rho = (last / first) ** (1.0 / steps) if steps > 0 and first > 0 else 0.5
        rho = min(rho, max_rho)
        return last * rho / (1.0 - rho)

    def stalled(self):
        return self.tol is not None and self.no_improvement >= self.n_iter_no_change

    def swings(self):
        """Whether the objective rose in any of the last ``n_iter_no_change`` epochs:
        a plateau of noise (a step too large), not a converged geometric decrease."""
        return self._swings(self.history[-self.n_iter_no_change - 1 :])

    def _swings(self, values):
        """Whether a sequence of objectives rose by more than ``tol`` (relative) at
        some step. Smaller rises are rounding and the noise of an iterate at its
        optimum: counted as swings, they shrank the step of fits that had
        converged (proximal SAGA under pure L1 on digits ran 5,000 epochs)."""
        tol = self.tol or 0.0
        return any(
            later > earlier + tol * abs(earlier)
            for earlier, later in zip(values, values[1:], strict=False)
        )

    def rose(self, value):
        """Whether ``value`` sits above the best by more than the tolerance (or 1e-6)."""
        return value > self.best + max(self.tol or 0.0, 1e-6) * abs(self.best)

    def restart(self):
        self.no_improvement = 0


class Extrapolation:
    r"""Regularised nonlinear acceleration of the epochs' iterates (RNA).

    Scieur, d'Aspremont and Bach (2016, "Regularized nonlinear acceleration";
    2017, "Nonlinear acceleration of stochastic algorithms", where it
    accelerates SAGA and SVRG): from the iterates :math:`x_0, \dots, x_k` at the
    end of the last ``k`` epochs, with differences :math:`R = [x_1 - x_0,
    \dots, x_k - x_{k-1}]`, the weights

    .. math::

        c = \frac{z}{\mathbf{1}^\top z}, \qquad
        \Bigl(\frac{R^\top R}{\|R^\top R\|_2} + \lambda I\Bigr) z = \mathbf{1}

    combine them into :math:`\sum_i c_i x_{i+1}`, the affine combination whose
    differences nearly cancel: for a linearly converging iteration it is the
    limit along the ``k`` slowest directions. The caller evaluates the
    objective there and keeps the point only where it is lower, so a bad
    extrapolation costs one pass of logits and nothing else; either way the
    next cycle starts from the weights kept (:meth:`accepted`), so that is one
    objective per ``every`` epochs at most. (Sliding the window on after a
    refusal tried again at every epoch, mostly in vain.) What it buys is
    measured where SAGA is slowest, nearly separable data at a weak penalty:
    standardised iris / wine / breast_cancer / digits at alpha=1e-4 went from
    0.4-2% above the optimum after 1000 epochs to within 4e-4 of it in 159-756
    epochs (``every=5``; at 2 and 3 the extrapolations fitted the noise of
    single epochs, at 8 they came too seldom).

    Only the last iterate and the ``k`` differences are kept, as ``every + 1``
    float64 rows of the weights' size (the point is :math:`x_k - \sum_j C_j
    r_j` with :math:`C_j = \sum_{i<j} c_i`): keeping the iterates and
    differencing them made 18 such copies at the peak. Every ``every``
    epochs: ``every**2`` dot products over them, and one objective.

    Parameters
    ----------
    every : int, default=5
        Epochs between extrapolations (``k``).
    regularisation : float, default=1e-8
        :math:`\lambda`, relative to the norm of :math:`R^\top R`.
    """

    def __init__(self, every=5, regularisation=1e-8):
        self.every = int(every)
        self.regularisation = float(regularisation)
        self.last = None  # the last iterate, flat, float64
        self.differences = None  # (every, n_weights): rows 0 .. count - 1 in use
        self.count = 0

    def record(self, params):
        """Note the weights after an epoch; True when an extrapolation is due."""
        sizes = [math.prod(p.shape) for p in params]
        if self.last is None or self.last.shape[0] != sum(sizes):
            self.last = np.empty(sum(sizes))
            self.differences = np.empty((self.every, sum(sizes)))
            self.count = -1  # no previous iterate to take a difference from
        row = self.differences[self.count] if self.count >= 0 else None
        start = 0
        for p, size in zip(params, sizes, strict=True):
            # On the host, in float64: the weights of array-API inputs too (a copy
            # of the weights per epoch, small next to the epoch's pass over X).
            flat = np.asarray(to_host(p), dtype=np.float64).ravel(_order(p))
            part = slice(start, start + size)
            if row is not None:
                np.subtract(flat, self.last[part], out=row[part])
            self.last[part] = flat
            start += size
        self.count += 1
        return self.count == self.every

    def point(self):
        """The extrapolated weights, flat; None where the system is degenerate."""
        differences = self.differences[: self.count]
        gram = differences @ differences.T
        norm = np.linalg.norm(gram, 2)
        if not (np.isfinite(norm) and norm > 0):
            return None
        gram /= norm
        gram.flat[:: len(gram) + 1] += self.regularisation
        try:
            z = np.linalg.solve(gram, np.ones(len(gram)))
        except np.linalg.LinAlgError:
            return None
        if not (np.isfinite(z).all() and z.sum() != 0):
            return None
        c = z / z.sum()
        before = np.concatenate(([0.0], np.cumsum(c)[:-1]))  # C_j = sum of c_i, i < j
        return self.last - before @ differences

    def load(self, flat, params):
        """Write flat weights (from :meth:`point`, or :attr:`last`) into ``params``."""
        start = 0
        for p in params:
            size = math.prod(p.shape)
            values = flat[start : start + size].reshape(tuple(p.shape), order=_order(p))
            p[...] = to_device(values, *namespace_of(p), dtype=p.dtype) if is_xp(p) else values
            start += size

    def accepted(self, flat):
        """``flat`` is the iterate kept (extrapolated or not): the next cycle starts from it."""
        if flat is not self.last:
            self.last[...] = flat
        self.count = 0

    def restart(self):
        """Forget the iterates (the weights were set back elsewhere)."""
        self.last = self.differences = None
        self.count = 0


def _order(array):
    """The order of ``array``'s memory ("F" for coef kept Fortran-ordered), for copies
    that read and write it in place."""
    numpy = getattr(array, "flags", None) is not None  # else an array-API array, C-ordered
    return "F" if numpy and _f_ordered(array) else "C"
