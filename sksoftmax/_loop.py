"""The training loop: the epochs of one ``fit`` or ``partial_fit`` call.

The estimator validates, builds the training state and publishes the result;
between those, this module runs the epochs:

- :class:`EpochRunner` runs one epoch (the row order, the engine, SAGA's
  memory, Ctrl-C) and measures it;
- :class:`FitLoop` runs ``fit``'s epochs and decides after each, from the exact
  training objective, whether to go on, to go back to the best weights and
  shrink the step, or to stop (the rules themselves are
  :class:`sksoftmax._training.StoppingRule` and ``Snapshot``);
- :func:`partial_epoch` is ``partial_fit``'s one epoch.

Messages (the divergence error, the warnings, the verbose lines) stay the
estimator's: they name its parameters.
"""

import time
import warnings
from functools import partial

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import assert_all_finite

from . import _array_api
from ._array_api import objective_in_chunks
from ._engine import MAX_LOGIT, DivergenceError
from ._optim import SAGAMemory
from ._penalty import Penalty
from ._training import Extrapolation, Snapshot, StoppingRule


class EpochRunner:
    """One training call's epochs: the row order, the engine, SAGA's memory, Ctrl-C."""

    def __init__(
        self, estimator, X, y_idx, weights, train_rows, state, rng, engine, *, incremental
    ):
        self.estimator = estimator
        self.X, self.y_idx, self.weights = X, y_idx, weights
        self.train_rows = train_rows
        self.n_train = X.shape[0] if train_rows is None else len(train_rows)
        self.state, self.rng, self.engine = state, rng, engine
        coef, intercept = state.params
        saga_class = SAGAMemory
        if _array_api.is_xp(X):
            saga_class = partial(_array_api.NamespaceSAGAMemory, train_rows=train_rows)
        self.saga = (
            saga_class(X.shape[0], self.n_train, coef, intercept, engine.batch_size)
            if not incremental and estimator._uses_saga(X)
            else None
        )
        self.stop_requested = None
        self.epochs = 0
        self.interrupted = False
        self.order = None
        self.n_seen = 0

    def epoch(self):
        """One epoch; the weighted mean loss of its batches (each before its update).

        None when a KeyboardInterrupt reached the loop itself; ``interrupted`` is
        set either way when the user asked to stop.
        """
        est, state = self.estimator, self.state
        order = self.train_rows
        if est.shuffle:
            order = self.rng.permutation(self.n_train if order is None else order)
        self.order = order
        coef, intercept = state.params
        try:
            loss_sum, self.n_seen = self.engine.run_epoch(
                self.X,
                self.y_idx,
                self.weights,
                order,
                coef,
                intercept,
                state.optimizer,
                penalty=Penalty.of(est),
                fit_intercept=est.fit_intercept,
                stop_requested=self.stop_requested,
                offset=state.offset,
                saga=self.saga,
            )
        except KeyboardInterrupt:
            if self.stop_requested():
                raise  # the second Ctrl-C: stop everything, now
            self.interrupted = True
            return None
        self.interrupted = self.stop_requested()
        seen_weight = self._visited_weight()
        return loss_sum / seen_weight if seen_weight > 0 else 0.0

    def _visited_weight(self):
        """Sum of the (scaled) weights of the rows the epoch visited."""
        if self.weights is None:
            return float(self.n_seen)
        rows = slice(self.n_seen) if self.order is None else self.order[: self.n_seen]
        return float(self.weights[rows].sum(dtype=np.float64))

    def restore(self, snapshot):
        """Go back to ``snapshot``'s weights, with an empty SAGA memory."""
        snapshot.restore(self.state.params, self.state.optimizer)
        if self.saga is not None:
            self.saga.forget()

    def last_step_diverged(self, loss_limit):
        """Whether the epoch's last update blew up its own batch.

        The engine checks every batch's logits before its update, so each update
        but the last is checked on the next batch; this checks the last: logits
        past MAX_LOGIT, or the batch's loss after its own update above
        ``loss_limit``. A step of sane size lowers the loss of the batch it was
        computed on; centred raw iris at eta0=1e12 left logits of 1e12, below
        MAX_LOGIT, and a loss of the same size.
        """
        size = self.engine.batch_size
        start = (self.n_seen - 1) // size * size
        rows = (
            np.arange(start, self.n_seen) if self.order is None else self.order[start : self.n_seen]
        )
        coef, intercept = self.estimator._published_params(self.state)
        loss, max_logit = objective_in_chunks(
            self.X, self.y_idx, None, coef, intercept, 0.0, rows=rows
        )
        return not (max_logit < MAX_LOGIT and loss <= loss_limit)  # NaN: diverged


def check_finite(X, estimator):
    """Raise scikit-learn's ValueError if dense X holds NaN or infinity."""
    assert_all_finite(X, input_name="X", estimator_name=type(estimator).__name__)


def partial_epoch(run, unchecked_X):
    """One epoch of ``partial_fit``; ``loss_curve_`` gets its progressive loss.

    That is the chunk's loss with each row taken before its batch's update
    (a streaming estimate of the loss on unseen data, at no extra cost).
    ``unchecked_X``: X was not checked for NaN and infinity yet.
    """
    est, state = run.estimator, run.state
    if unchecked_X and not run.engine.screens_nonfinite_rows(state.params[0]):
        check_finite(run.X, est)
        unchecked_X = False
    try:
        data_loss = run.epoch()
    except DivergenceError:
        data_loss = np.nan  # below: the cause (NaN in X), else the divergence
    if data_loss is None:  # interrupted
        if unchecked_X:
            check_finite(run.X, est)  # the rows the epoch did not reach
        return
    loss = data_loss + _array_api.penalty_value(Penalty.of(est), state.params[0])
    # Twice the chunk's loss (each row's before its batch's update), plus that of
    # a uniform guess: past this, the last update made its own batch far worse.
    limit = 2.0 * data_loss + np.log(max(2, len(est.classes_)))
    if not np.isfinite(loss) or run.last_step_diverged(limit):
        if unchecked_X:
            check_finite(run.X, est)
        est._raise_diverged(state.optimizer, state.n_iter + 1)
    state.loss_curve.append(loss)
    state.n_iter += 1
    run.epochs = 1


class FitLoop:
    """Up to ``max_iter`` epochs of ``fit``, watched on the exact training objective.

    After each epoch the objective at the weights the fit would return is
    evaluated exactly (one pass of logits over the training rows). With
    ``learning_rate="adaptive"`` the step is ours: a blow-up or a rise goes
    back to the best weights and divides the step by 5. For the schedules the
    user set, a blow-up raises (and changes nothing); a rise at the end keeps
    the best weights with a ConvergenceWarning. With early stopping the
    validation score is watched instead, and its best epoch is returned.

    Parameters
    ----------
    run : EpochRunner
    sample_weight : ndarray of shape (n_samples,)
    train_rows, validation_rows : ndarray of int or None
        The early-stopping split; None for none.
    """

    def __init__(self, run, sample_weight, train_rows, validation_rows):
        self.run, self.est = run, run.estimator
        self.state, self.optimizer = run.state, run.state.optimizer
        self.sample_weight, self.train_rows = sample_weight, train_rows
        self.validation_rows = validation_rows
        self.early_stopping = validation_rows is not None
        est = self.est
        self.start, _ = self.objective()
        self.extrapolation = Extrapolation() if self._accelerates() else None
        self.rule = StoppingRule(
            est.tol,
            est.n_iter_no_change,
            self.start,
            extrapolate=run.saga is not None,
            window=1 if self.extrapolation is None else 2 * self.extrapolation.every,
        )
        self.score_rule = StoppingRule(est.tol, est.n_iter_no_change, np.inf, relative=False)
        self.recoverable = est.learning_rate == "adaptive"
        # The best weights: returned when stopping by tol or early stopping, and
        # gone back to when an adaptive step blows up (with tol=None too).
        self.keeps_best = est.tol is not None or self.early_stopping
        self.best = (
            Snapshot(self.state.params, self.optimizer)
            if self.keeps_best or self.recoverable
            else None
        )
        self.validation_scores = [] if self.early_stopping else None
        self.best_score, self.best_score_loss = -np.inf, np.inf
        self.converged = False
        self.blow_ups = 0
        self.was_high = self.ever_high = False
        self.start_time = time.perf_counter()

    def objective(self):
        """``(objective, largest |logit|)`` at the weights the fit would return."""
        coef, intercept = self.est._published_params(self.state)
        return objective_in_chunks(
            self.run.X,
            self.run.y_idx,
            self.sample_weight,
            coef,
            intercept,
            Penalty.of(self.est),
            rows=self.train_rows,
            logits=self.run.engine.logits_function(coef),
        )

    def _accelerates(self):
        """Whether the epochs' iterates are extrapolated (:class:`Extrapolation`).

        For SAGA's plain steps, whose iterates converge linearly to the optimum:
        not plain SGD (its iterates wander at a noise floor), not momentum or
        averaging (their buffers belong to the iterates left behind), not an
        L1 part (a combination of sparse iterates is not sparse).
        """
        optimizer = self.optimizer
        return (
            self.run.saga is not None
            and not optimizer.momentum
            and not optimizer.averaging
            and not Penalty.of(self.est).l1
        )

    def _extrapolate(self, value, max_logit):
        """After an epoch: record its weights and, once a cycle is complete, move to
        the extrapolated weights where their objective is lower. Returns the
        objective and the largest logit of the weights the epoch leaves, and
        whether they are the extrapolated ones."""
        extrapolation, params = self.extrapolation, self.state.params
        if not extrapolation.record(params):
            return value, max_logit, False
        point = extrapolation.point()
        if point is not None:
            extrapolation.load(point, params)
            there, there_logit = self.objective()
            if there < value and there_logit < MAX_LOGIT:
                extrapolation.accepted(point)
                return there, there_logit, True
            extrapolation.load(extrapolation.last, params)
        extrapolation.accepted(extrapolation.last)  # a new cycle from the epoch's weights
        return value, max_logit, False

    def fit(self):
        """Run the epochs, leave the returned weights in the state, and warn."""
        for _ in range(self.est.max_iter):
            if not self._epoch():
                break
        self._finish()

    def _epoch(self):
        """One epoch and what it means; False to stop."""
        run = self.run
        try:
            data_loss = run.epoch()
        except DivergenceError:
            data_loss = np.nan
        if data_loss is None:  # interrupted
            return False
        value, max_logit = self.objective() if np.isfinite(data_loss) else (np.nan, np.nan)
        blew_up = self._blew_up(value, max_logit)
        run.epochs += 1
        self.state.n_iter += 1
        if blew_up:
            self._back_off()
            return True
        jumped = False
        if self.extrapolation is not None and not run.interrupted:
            value, max_logit, jumped = self._extrapolate(value, max_logit)
        self.state.loss_curve.append(value)
        improved = self.rule.update(value, self.state.n_iter, jumped)
        if run.interrupted:
            if improved and self.best is not None:
                self.best = Snapshot(self.state.params, self.optimizer)
            return False
        self._keep_if_best(improved, value)
        if self.est.verbose:
            self.est._print_epoch(
                self.state.n_iter, value, self.validation_scores, self.optimizer, self.start_time
            )
        watched = self.score_rule if self.early_stopping else self.rule
        if watched.stalled() and not self._goes_on_after_stall(watched, value):
            self.converged = True
            return False
        return True

    def _blew_up(self, value, max_logit):
        """Whether the epoch blew up; raises when the step is the user's.

        Above twice the start: for the adaptive step at once; for a schedule the
        user set only twice running, as a decaying step may come back ("optimal"
        at alpha=1e5: 160 after its first epoch, then the start's).
        """
        high = not value <= self.start + abs(self.start)
        blew_up = not max_logit < MAX_LOGIT or (high and (self.recoverable or self.was_high))
        self.was_high = high
        self.ever_high = self.ever_high or high
        if blew_up and not (self.recoverable and self.best is not None):
            self.est._raise_diverged(self.optimizer, self.run.epochs + 1, value, self.start)
        return blew_up

    def _back_off(self):
        """After a blow-up of the adaptive step: the best weights, a step 5x smaller."""
        self.blow_ups += 1
        self._restore_best()
        self.optimizer.stalled()
        self.rule.restart()
        self.state.loss_curve.append(self.rule.best)

    def _restore_best(self):
        self.run.restore(self.best)
        if self.extrapolation is not None:
            self.extrapolation.restart()

    def _keep_if_best(self, improved, value):
        """Snapshot the weights when they are the best so far (on the watched score)."""
        if self.early_stopping:
            score = self.est._validation_score(
                self.run.X,
                self.run.y_idx,
                self.validation_rows,
                self.sample_weight,
                *self.est._published_params(self.state),
            )
            self.validation_scores.append(score)
            if self.score_rule.update(-score, self.state.n_iter):
                self.best_score, self.best_score_loss = score, value
                self.best = Snapshot(self.state.params, self.optimizer)
        elif improved and self.best is not None:
            self.best = Snapshot(self.state.params, self.optimizer)

    def _goes_on_after_stall(self, watched, value):
        """What a stall means: True to go on (with a smaller step), False to stop.

        A rise (the objective above the best) is a step too large: the adaptive
        schedule goes back to the best weights and shrinks the step, a schedule
        the user set stops on the best weights with a ConvergenceWarning. A
        plateau is SAGA's optimum (stop) or a noise floor (SGD's, or SAGA's
        swinging at a step too large for it), which only the adaptive schedule
        lowers, by shrinking the step.
        """
        rule, optimizer = self.rule, self.optimizer
        rose = watched is rule and rule.rose(value)
        if rose and not self.recoverable:
            if rule.best_epoch == 0 and self.ever_high:
                # No epoch beat the start, some were above twice it: the user's step
                # diverges (a warm start from the optimum that rose a little does not).
                self.est._raise_diverged(optimizer, self.run.epochs, value, self.start)
            self.est._warn_rose(optimizer, rule, value)
            return False
        if rose:
            self._restore_best()
        noisy = self.run.saga is None or (watched is rule and rule.swings())
        if (rose or noisy) and optimizer.stalled():
            watched.restart()
            if self.extrapolation is not None:  # iterates of one step size per cycle
                self.extrapolation.restart()
            return True
        return False

    def _finish(self):
        """Leave the returned weights in the state, with the record of the fit."""
        state, run = self.state, self.run
        if self.was_high and not self.keeps_best:  # tol=None: the last weights are the model
            self.est._raise_diverged(self.optimizer, run.epochs, state.loss_curve[-1], self.start)
        if self.keeps_best and (self.early_stopping or not run.interrupted):
            self.best.restore(state.params, self.optimizer)
        if self.early_stopping:
            state.best_loss = self.best_score_loss
            state.validation_scores = self.validation_scores
            state.best_validation_score = self.best_score
        elif self.keeps_best:
            state.best_loss = self.rule.best  # the start's, if no epoch beat it
        if not run.interrupted:
            self._warn_unconverged()

    def _warn_unconverged(self):
        optimizer, rule = self.optimizer, self.rule
        if self.blow_ups and rule.best_epoch == 0:
            warnings.warn(
                f"No epoch of this fit improved on its starting objective ({rule.start:.6g}): "
                f"the step blew up {self.blow_ups} times, and the model is where it started. "
                f"The step is now eta={optimizer.current_eta():.3g}; use a smaller eta0, "
                "or scale the features, e.g. with StandardScaler.",
                ConvergenceWarning,
                stacklevel=7,
            )
        elif not self.converged and self.est.tol is not None:
            warnings.warn(
                f"Maximum number of epochs ({self.est.max_iter}) reached before convergence. "
                "Consider increasing max_iter, or tol.",
                ConvergenceWarning,
                stacklevel=7,
            )
