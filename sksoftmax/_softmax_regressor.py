"""SoftmaxRegressor: multinomial logistic regression trained by minibatch SGD."""

import copy
import re
import signal
import threading
import time
import warnings
from contextlib import contextmanager, nullcontext
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import StratifiedShuffleSplit
from sklearn.utils import check_random_state, compute_class_weight
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.extmath import safe_sparse_dot
from sklearn.utils.multiclass import check_classification_targets, unique_labels
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data
from threadpoolctl import ThreadpoolController

from . import _array_api
from ._engine import MAX_LOGIT, EpochEngine, compiled_sparse_rule, sparse_saga_compiles
from ._loop import EpochRunner, FitLoop, partial_epoch
from ._loss import full_logits, log_softmax, softmax
from ._optim import LEARNING_RATES, SOLVERS, SGDOptimizer, estimate_curvature
from ._penalty import PENALTIES, Penalty
from ._xp_engine import NamespaceEngine

# eta0="auto" for SAGA: this many times plain SGD's 2 / L. The bound takes the
# softmax's largest curvature, 1/2, which the iterates rarely see; SAGA has no
# noise floor to pay for a larger step, and a step too large is caught (back to
# the best weights, the step divided by 5). Epochs to the default tol, measured
# on standardised iris / wine / breast_cancer / digits at alpha=1e-2: 181 / 372 /
# 89 / 211 at 1x, 89 / 185 / 47 / 110 at 2x, 56 / 119 / 34 / 75 at 3x; at 10x
# and 30x some fits oscillated (iris: a gap of 0.45 after 1000 epochs at 30x).
# Tried and dropped: growing the step by 1.1-1.25 after each best epoch (a "bold
# driver", backing off by 5 on a blow-up or rise). It brought iris, wine and
# digits at alpha=1e-4 within 1e-3-3e-3 in 250-450 epochs, but iris at 1e-2
# then cycled between growth and back-off, 0.17-0.46 above the optimum.
SAGA_STEP_FACTOR = 3.0

# Rows scored at a time on the validation set, so that no copy of X is made.
_SCORING_CHUNK = 4096

_blas_controller = None

# Bounds of power_t and average (see _parameter_constraints).
_MAX_POWER_T = 10.0
_MAX_INT64 = int(np.iinfo(np.int64).max)


def _limit_blas_threads(limit):
    """Context limiting BLAS to ``limit`` threads; None leaves them alone.

    Only in the main thread. The limit is process-wide (threadpoolctl), so
    trainings running at once in several threads (a threading backend, Dask's
    threaded scheduler) would set and restore each other's limits, and
    OpenBLAS was seen to ignore a restore issued from a worker thread while
    others were in BLAS calls: the process was left at one thread for good.
    One ThreadpoolController for the process: creating one scans the loaded
    libraries, ~1.5 ms, which a partial_fit on a small chunk would pay each call.
    """
    global _blas_controller
    if limit is None or threading.current_thread() is not threading.main_thread():
        return nullcontext()
    if _blas_controller is None:
        _blas_controller = ThreadpoolController()
    return _blas_controller.limit(limits=limit, user_api="blas")


class SoftmaxRegressor(ClassifierMixin, BaseEstimator):
    r"""Multinomial logistic (softmax) regression trained by minibatch SGD.

    A true multinomial model: one softmax over all classes, not one-vs-rest
    sigmoids as in :class:`~sklearn.linear_model.SGDClassifier` with
    ``loss="log_loss"``. Parameters are named as in ``SGDClassifier``.

    For :math:`K > 2` classes the model is :math:`P = \mathrm{softmax}(X W^T + b)`
    with ``W = coef_`` of shape ``(K, n_features)``; for two classes it is binary
    logistic regression with one weight vector, as in
    :class:`~sklearn.linear_model.LogisticRegression`. Training minimises

    .. math::

        \frac{\sum_i s_i \, \mathrm{CE}(y_i, p_i)}{\sum_i s_i}
        + \alpha \left( \rho \lVert W \rVert_1
        + \frac{1 - \rho}{2} \lVert W \rVert_F^2 \right)

    over ``W`` and ``b`` (the intercept is not penalised), where :math:`s_i`
    are the sample weights times the class weights and :math:`\rho` is
    ``l1_ratio`` (0 for the default ``penalty="l2"``, 1 for ``"l1"``). This is
    the objective of ``LogisticRegression(C=C, penalty=..., l1_ratio=...)`` with
    ``alpha = 1 / (C * n_samples)``.

    Parameters
    ----------
    penalty : {"l2", "l1", "elasticnet"} or None, default="l2"
        The penalty on ``coef_``, as in SGDClassifier: "l2" is ``0.5 * alpha *
        ||W||^2``, "l1" is ``alpha * |W|_1`` (exact zeros in ``coef_``, see
        :meth:`sparsify`), "elasticnet" mixes them by ``l1_ratio``, None is
        none. The L1 part is applied after each step: by soft-thresholding
        (the proximal step) under SAGA, which converges to the exact optimum,
        and by the cumulative penalty of Tsuruoka, Tsujii and Ananiadou (2009)
        under plain SGD (``partial_fit``, wide sparse X), as SGDClassifier does,
        which keeps each sparse batch's cost in its non-zeros. Sparse X trained
        by plain SGD with an L1 part is not centred (see ``solver``).
    alpha : float, default=1e-4
        Regularisation strength: the constant that multiplies the penalty (and
        the "optimal" schedule's constant).
    l1_ratio : float, default=0.15
        The share of L1 in the elastic-net penalty, in [0, 1]; used only
        with ``penalty="elasticnet"``.
    fit_intercept : bool, default=True
        Whether to learn the intercept ``b``.
    max_iter : int, default=1000
        Maximum number of epochs (passes over the training data) in ``fit``.
    tol : float or None, default=1e-4
        Relative tolerance on the training objective: ``fit`` stops once the
        objective, evaluated exactly at the weights it would return after each
        epoch, is estimated to be within ``tol * objective`` of its limit, for
        ``n_iter_no_change`` epochs in a row. The estimate is the last epoch's
        decrease times ``rho / (1 - rho)``, ``rho`` being its geometric rate over
        the last epochs (SAGA converges linearly). Unlike ``SGDClassifier``'s
        absolute ``tol``, this measures the distance to the optimum: at the
        default the fit lands within about 1e-4 of it. With
        ``early_stopping=True`` the validation score is watched instead, and it
        must improve by ``tol`` (absolute), as in SGDClassifier. None disables
        the check: exactly ``max_iter`` epochs.
    batch_size : int, default=128
        Samples per SGD step; the gradient is the mean over the batch.
    solver : {"auto", "saga", "sgd"}, default="auto"
        How ``fit`` steps:

        - "saga": minibatch SAGA (Defazio, Bach and Lacoste-Julien, 2014), which
          keeps each row's last loss gradient (a table of ``n_samples x
          n_classes`` residuals, 1% of a 784-feature X) and steps along the
          variance-reduced direction; with a constant step it converges to the
          optimum at a linear rate, at the cost of a plain SGD epoch on dense X.
          Its plain steps (no momentum, averaging or L1 part) are also
          extrapolated: every 5 epochs the fit evaluates the combination of its
          last 6 weights that extrapolates their convergence (regularised
          nonlinear acceleration) and moves there where the objective is lower,
          which is what lands nearly separable data at a weak ``alpha``.
        - "sgd": plain minibatch SGD, which reaches a noise floor around the
          optimum and relies on the schedule (or ``average``) to shrink it.
        - "auto": "saga" for dense X; for sparse X, "saga" where the compiled
          epoch runs it with lagged updates, O(nnz) a batch (numba installed,
          large enough X, no momentum, averaging or L1 part), or where there
          are at most twice as many features as a batch has non-zeros (the
          numpy epoch updates every weight at every batch); else "sgd", whose
          batches stay O(nnz).

        ``partial_fit`` always takes plain SGD steps: SAGA's memory needs the
        same rows again, a stream brings new ones.
    learning_rate : {"constant", "optimal", "invscaling", "adaptive"}, \
            default="adaptive"
        Step-size schedule, with ``t`` the number of samples seen (from 1):

        - "constant": ``eta = eta0``;
        - "optimal": ``eta = 1 / (alpha * (t0 + t - 1))`` with sklearn's heuristic
          ``t0`` (first step ``alpha ** -0.25``); needs ``alpha > 0``;
        - "invscaling": ``eta = eta0 / t ** power_t``;
        - "adaptive": ``eta = eta0`` divided by 5 each time the watched score
          stalls for ``n_iter_no_change`` epochs; training stops when it falls
          below 1e-6.
    eta0 : float or "auto", default="auto"
        Initial step. "auto" takes ``2 / L`` with ``L`` a bound on the curvature
        of a batch's mean loss, ``c * (lambda_max + f * max_i r_i / batch_size)
        + alpha``: ``lambda_max`` is the top eigenvalue of the weighted
        ``[X, 1]^T [X, 1] / n`` (power iteration on a sample of rows), ``r_i =
        (||x_i||^2 + 1) * w_i / mean(w)`` the most one row can add to a batch,
        ``f = (n - batch_size) / (n - 1)`` (0 for full batches), and ``c = 1/2``
        (``1/4`` for two classes) the largest curvature of the loss in the
        logits. The rows are those training sees, implicitly centred on their
        weighted mean (which, for 28 x 28 images with pixels in [0, 1], makes
        the step 20x larger). SAGA takes 3 times that step (it has no noise
        floor to pay for it; a step too large is caught and divided by 5). With
        momentum it is multiplied by ``1 - momentum``, keeping the effective
        step ``eta / (1 - momentum)`` of plain SGD. ``partial_fit`` estimates
        the curvature on its first chunk; a chunk smaller than ``batch_size``
        steps in proportion to its size.
    power_t : float, default=0.5
        Exponent of the "invscaling" schedule, in ``[0, 10]``. As in
        MLPClassifier, negative values (which make the step grow) are refused;
        past 1 the steps have a finite sum, so training may stall short of the
        optimum, and 10 keeps ``t ** power_t`` finite for any sample count.
    momentum : float, default=0.0
        Heavy-ball momentum in ``[0, 1)``; 0 is plain SGD.
    nesterov : bool, default=False
        Use Nesterov's momentum; needs ``momentum > 0``.
    average : bool or int, default=False
        Polyak-Ruppert averaging of ``W`` and ``b``: predictions use the average
        of the iterates. An int starts averaging once that many samples have
        been seen (at most ``2**63 - 1``, the range of ``t_``); True starts at
        once.
    early_stopping : bool, default=False
        Hold out a stratified ``validation_fraction`` of the training data,
        watch ``scoring`` on it after each epoch, stop after ``n_iter_no_change``
        epochs without improvement and restore the best weights seen.
        ``partial_fit`` refuses it (ValueError), as MLPClassifier's and
        SGDClassifier's do: a single chunk has no held-out set to watch.
    validation_fraction : float, default=0.1
        Fraction of the training data held out when ``early_stopping=True``.
    n_iter_no_change : int, default=5
        Epochs without improvement tolerated before stopping or shrinking the
        "adaptive" step.
    scoring : {"loss", "accuracy"}, default="loss"
        Validation score watched by early stopping: the negated log-loss
        (what the model optimises) or the accuracy.
    class_weight : dict, "balanced" or None, default=None
        Weights ``{label: weight}`` multiplied into the sample weights, each a
        finite non-negative number (labels left out weigh 1);
        "balanced" uses ``n_samples / (n_classes * np.bincount(y))``.
    warm_start : bool, default=False
        Continue the previous ``fit`` from its weights and optimiser state
        (sample counter ``t_``, momentum, averages), so the schedule goes on
        rather than restarting.
    shuffle : bool, default=True
        Shuffle the training rows at each epoch.
    random_state : int, RandomState instance or None, default=None
        Seeds shuffling, the validation split and the rows sampled to
        estimate ``eta0="auto"``.
    verbose : int, default=0
        When positive, print one line per epoch.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels.
    coef_ : {ndarray, csr_matrix} of shape (1, n_features) or (n_classes, n_features)
        Weights; one row (for ``classes_[1]``) when there are two classes.
        Same dtype as the training data (float32 or float64). A CSR matrix
        after :meth:`sparsify`, until :meth:`densify` or the next training call.
    intercept_ : ndarray of shape (1,) or (n_classes,)
        Intercepts; zeros when ``fit_intercept=False``.
    n_features_in_ : int
        Number of features seen during ``fit``.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of the features, when ``X`` had string column names.
    n_iter_ : int
        Epochs run by the last ``fit`` (as in SGDClassifier, a warm start counts
        from 0), plus the ``partial_fit`` calls made since.
    t_ : int
        Training samples processed by the optimiser, across ``partial_fit``
        calls and warm starts; the ``t`` of the step-size schedules.
    loss_curve_ : list of float
        Training objective per epoch. For ``fit``, the objective evaluated
        exactly, after the epoch, at the weights the model would predict with
        (averaged, if averaging); what ``tol`` is compared with. For
        ``partial_fit``, the chunk's progressive loss: each row's loss taken
        before its batch's update, plus the L2 penalty after the call (an
        estimate, on rows the model had not seen, that costs no extra pass). It
        grows across warm starts and ``partial_fit`` calls, as MLPClassifier's does.
    best_loss_ : float
        For ``fit``, the objective of the returned weights: ``fit`` returns the
        best epoch's weights; with early stopping, the training objective of
        the epoch whose weights were kept. Otherwise the lowest value of
        ``loss_curve_``.
    validation_scores_ : list of float or None
        Validation score per epoch (higher is better: negated log-loss or
        accuracy); None without early stopping.
    best_validation_score_ : float or None
        Best of ``validation_scores_``, the score of the returned model.

    See Also
    --------
    sklearn.linear_model.LogisticRegression : Same objective, full-batch solvers.
    sklearn.linear_model.SGDClassifier : One-vs-rest linear models by SGD.

    Notes
    -----
    Probabilities are computed by a max-shifted softmax and log-probabilities by
    log-sum-exp, so ``predict_log_proba`` stays finite where a probability
    underflows to 0. A loss that stops being finite (a step too large for the
    data) raises ``ValueError`` and leaves a previously fitted model unchanged.
    Ctrl-C during ``fit`` ends training after the current batch with a warning,
    keeping a usable model; a second Ctrl-C raises ``KeyboardInterrupt`` at once.
    (On the compiled engine: after the current chunk of batches, a few
    milliseconds of work.) The second press may come in a later fit of a loop
    of fits, such as a grid search or a loop of ``partial_fit`` calls: the first
    press stays pending until no fit has run for 10 seconds, so a new fit
    started sooner raises ``KeyboardInterrupt`` at its first Ctrl-C.

    When numba is installed (``pip install sksoftmax[fast]``), large problems
    train with compiled epochs: dense data of at least ``2**20`` entries with at
    most 4096 logits per batch (``n_classes * batch_size``), 1.5x faster than
    the numpy engine on 60,000 x 784 x 10 classes; and sparse data with at
    least ``2**18`` non-zeros or ``2**20`` weights, without momentum or
    averaging, about 3x faster (``benchmarks/``). They run the same batches and
    updates as the numpy engine and agree with it to rounding, not bit for bit,
    so the same ``random_state`` gives slightly different weights with and
    without numba. The first use compiles for a few seconds per dtype, cached
    on disk afterwards. ``SKSOFTMAX_NUMBA=0`` in the environment switches them
    off. After training on sparse data ``coef_`` is Fortran-ordered, the layout
    the sparse engines update in place.

    Under ``sklearn.config_context(array_api_dispatch=True)`` (with
    ``SCIPY_ARRAY_API=1``), dense torch, CuPy and array_api_strict arrays train
    on their own device with a batch loop in array-API operations, the same
    batches as for numpy (the same ``random_state`` gives the numpy model to
    rounding); the fitted arrays and the predictions are of X's namespace and
    device, ``classes_`` stays numpy. Sparse input, the numba engine and the
    L1 part of the penalty are numpy-only. See the user guide's "Array API" page.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from sksoftmax import SoftmaxRegressor
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = make_pipeline(StandardScaler(), SoftmaxRegressor(random_state=0))
    >>> clf.fit(X, y).score(X, y) > 0.95
    True
    >>> clf.predict_proba(X[:1]).round(2).sum()
    np.float64(1.0)
    """

    _parameter_constraints: dict = {
        "penalty": [StrOptions(set(PENALTIES)), None],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "l1_ratio": [Interval(Real, 0, 1, closed="both")],
        "fit_intercept": ["boolean"],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left"), None],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "solver": [StrOptions(set(SOLVERS))],
        "learning_rate": [StrOptions(set(LEARNING_RATES))],
        "eta0": [Interval(Real, 0, None, closed="neither"), StrOptions({"auto"})],
        # As MLPClassifier (SGDClassifier refuses negative values from 1.10); at most
        # _MAX_POWER_T so that t ** power_t stays finite for every t below 2 ** 63.
        "power_t": [Interval(Real, 0, _MAX_POWER_T, closed="both")],
        "momentum": [Interval(Real, 0, 1, closed="left")],
        "nesterov": ["boolean"],
        # A sample count, as t_: the compiled engines keep it in an int64.
        "average": [Interval(Integral, 0, _MAX_INT64, closed="right"), "boolean"],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "scoring": [StrOptions({"loss", "accuracy"})],
        "class_weight": [StrOptions({"balanced"}), dict, None],
        "warm_start": ["boolean"],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        *,
        penalty="l2",
        alpha=1e-4,
        l1_ratio=0.15,
        fit_intercept=True,
        max_iter=1000,
        tol=1e-4,
        batch_size=128,
        solver="auto",
        learning_rate="adaptive",
        eta0="auto",
        power_t=0.5,
        momentum=0.0,
        nesterov=False,
        average=False,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=5,
        scoring="loss",
        class_weight=None,
        warm_start=False,
        shuffle=True,
        random_state=None,
        verbose=0,
    ):
        self.penalty = penalty
        self.alpha = alpha
        self.l1_ratio = l1_ratio
        self.fit_intercept = fit_intercept
        self.max_iter = max_iter
        self.tol = tol
        self.batch_size = batch_size
        self.solver = solver
        self.learning_rate = learning_rate
        self.eta0 = eta0
        self.power_t = power_t
        self.momentum = momentum
        self.nesterov = nesterov
        self.average = average
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.scoring = scoring
        self.class_weight = class_weight
        self.warm_start = warm_start
        self.shuffle = shuffle
        self.random_state = random_state
        self.verbose = verbose

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        # Under array_api_dispatch, dense arrays of other namespaces train on their
        # own device (sksoftmax/_array_api.py, _xp_engine.py).
        tags.array_api_support = True
        return tags

    def __sklearn_array_api_convert__(self, converter):
        """A copy with every fitted array (optimiser state too) converted by ``converter``.

        What :func:`sklearn.utils._array_api.move_estimator_to` calls: the moved
        model predicts in the new namespace and trains on there (``partial_fit``,
        warm starts); ``classes_`` stays a numpy array of labels.

        Parameters
        ----------
        converter : callable
            Takes an array, returns it in the target namespace and device.

        Returns
        -------
        estimator : SoftmaxRegressor
            The converted copy.
        """
        return _array_api.convert_estimator(self, converter)

    # ------------------------------------------------------------------ fit

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None, coef_init=None, intercept_init=None):
        """Fit the model by minibatch SGD for up to ``max_iter`` epochs.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data; float32 input trains and stores float32 weights.
            Sparse input should be CSR (other formats are converted).
        y : array-like of shape (n_samples,)
            Class labels (at least two distinct values).
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights; multiplied by ``class_weight``.
        coef_init : ndarray of shape (n_classes, n_features), default=None
            Initial weights (``(1, n_features)`` or ``(n_features,)`` for two
            classes); zeros if None. With ``warm_start=True`` on a fitted model it
            replaces the learned weights, as in SGDClassifier.
        intercept_init : ndarray of shape (n_classes,), default=None
            Initial intercepts (``(1,)`` for two classes); zeros if None. With
            ``warm_start=True`` on a fitted model it replaces the learned ones.

        Returns
        -------
        self : SoftmaxRegressor
            Fitted estimator.
        """
        with self._rollback_on_error():
            warm = self.warm_start and hasattr(self, "coef_")
            xpd = _array_api.namespace(X)  # None: numpy
            self._check_namespace_penalty(xpd)
            y, sample_weight = _array_api.to_host(y), _array_api.to_host(sample_weight)
            X, y = _validate_data(
                self,
                X,
                y,
                accept_sparse="csr",
                dtype=[np.float64, np.float32] if xpd is None else _array_api.float_dtypes(*xpd),
                # Batches are gathered by rows: from column-major data that is
                # ~100x slower than one C-ordered copy (SGDClassifier does the same).
                order="C",
                reset=True,
            )
            y = _array_api.to_host(y)
            _check_targets(y)
            classes = np.unique(y)
            if len(classes) < 2:
                raise ValueError(
                    "SoftmaxRegressor needs samples of at least 2 classes in the data, "
                    f"but the data contains only one class: {classes.tolist()[0]!r}."
                )
            if warm and not np.array_equal(classes, self.classes_):
                raise ValueError(
                    f"warm_start=True needs the classes of the previous fit "
                    f"{self.classes_!r}, got {classes!r}."
                )
            if warm and X.shape[1] != self.coef_.shape[1]:
                raise ValueError(
                    f"X has {X.shape[1]} features, but warm_start=True continues the "
                    f"previous fit, which had {self.coef_.shape[1]}. Use "
                    "warm_start=False to fit the new features from scratch."
                )
            self.classes_ = classes
            y_idx = np.searchsorted(classes, y)
            host_X = X if xpd is None else _array_api.host_stub(X)
            sample_weight = self._sample_weight(host_X, y, y_idx, sample_weight)
            if len(np.unique(y_idx[sample_weight > 0])) < 2:
                raise ValueError(
                    "SoftmaxRegressor needs at least 2 classes with non-zero sample "
                    "weight; only one class has any weight."
                )
            rng = copy.deepcopy(self._rng) if warm else check_random_state(self.random_state)
            if warm:
                state = self._copy_state(X)
                # Centred on this fit's data (an exact change of the intercept's origin).
                _recentre(state, self._feature_offset_for(X, sample_weight))
                # As in SGDClassifier, a given coef_init / intercept_init replaces that
                # part of the warm-started weights; the rest of the state carries on.
                coef, intercept = self._initial_params(X, coef_init, intercept_init)
                if coef_init is not None:
                    state.params[0] = coef
                    # New weights: no L1 penalty received yet (as SGDClassifier's per call).
                    state.optimizer.l1_applied, state.optimizer.l1_total = None, 0.0
                if intercept_init is not None:
                    offset = state.offset
                    if offset is not None:  # the given intercept is the uncentred one
                        intercept = intercept + state.params[0] @ offset
                    state.params[1] = intercept
                state.optimizer.set_hyperparameters(
                    state.params,
                    **self._optimizer_options(
                        X, sample_weight, offset=state.offset, saga=self._uses_saga(X)
                    ),
                )
                # Each fit restarts the adaptive step at eta0, as SGDClassifier's does;
                # t_, momentum and averages carry on.
                state.optimizer.eta = state.optimizer.eta0
                # Each fit weighs its own data: the weights' scale is this fit's.
                state.weight_scale = None
            else:
                state = self._new_state(X, coef_init, intercept_init, sample_weight)
            self._train(X, y_idx, sample_weight, state, rng, incremental=False)
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """One epoch of minibatch SGD over ``(X, y)``, continuing the previous state.

        ``max_iter`` and ``tol`` do not apply, and ``early_stopping=True`` is
        refused (ValueError), as by MLPClassifier; the step-size schedule,
        momentum and averages carry over from call to call. A chunk
        smaller than ``batch_size`` is one batch, whose step is in proportion
        to its size (as for a ragged last batch in ``fit``): every row weighs
        the same however the stream is cut, and a one-row first chunk cannot
        swing the model (with eta0="auto" sized on it, a full step moved the
        intercept by 4 per row, and the model depended on the row order).
        Steps are plain SGD whatever ``solver``; ``solver="saga"`` is refused.

        NaN or infinity in X raises scikit-learn's ValueError and changes
        nothing, as in ``fit``. On a fitted model, where the compiled engine
        trains dense X it finds them itself, as it computes each row's logits,
        instead of in a separate pass over X (a fifth of the call's time).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            A chunk of training data.
        y : array-like of shape (n_samples,)
            Its labels, each one of ``classes``.
        classes : array-like of shape (n_classes,), default=None
            All labels that will ever appear; required on the first call
            (unless the model was fitted before), checked on later calls.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights; multiplied by a dict ``class_weight``. They
            keep their size from call to call: every call divides them by the
            mean weight of the call that started the model (the first
            ``partial_fit``, or ``fit``), so a chunk weighted 0.5 moves the
            model half as far as the same chunk weighted 1, and a chunk of one
            class is weighted by its ``class_weight``.

        Returns
        -------
        self : SoftmaxRegressor
            Updated estimator.
        """
        if self.early_stopping:
            # As MLPClassifier and SGDClassifier: one chunk has no held-out set to watch.
            raise ValueError(
                "partial_fit does not support early_stopping=True; use fit, or "
                "set_params(early_stopping=False) to train chunk by chunk."
            )
        with self._rollback_on_error():
            if self.solver == "saga":
                raise ValueError(
                    "solver='saga' needs the same rows at every epoch, which partial_fit "
                    "does not see: it takes plain SGD steps. Use solver='auto' or 'sgd'."
                )
            first_call = not hasattr(self, "classes_")
            if first_call and classes is None:
                raise ValueError("classes must be passed on the first call to partial_fit.")
            if classes is not None:
                classes = _named(unique_labels, "classes", _array_api.to_host(classes))
                if not first_call and not np.array_equal(classes, self.classes_):
                    raise ValueError(
                        f"classes={classes.tolist()} is not the same as on the first call "
                        f"to partial_fit or fit: {self.classes_.tolist()}."
                    )
                if len(classes) < 2:
                    raise ValueError(f"SoftmaxRegressor needs at least 2 classes, got {classes!r}.")
            if self.class_weight == "balanced":
                raise ValueError(
                    "class_weight='balanced' is not supported by partial_fit, which sees "
                    "one chunk at a time. Compute the weights once with "
                    "sklearn.utils.compute_class_weight('balanced', classes=classes, y=y) "
                    "and pass them as class_weight={label: weight}."
                )
            # On a fitted model, dense X is scanned for NaN and infinity by _train:
            # skipped where the compiled epoch checks every row in flight (the scan
            # was a fifth of a streamed epoch), run before training elsewhere.
            # Not when eta0="auto" has no curvature yet (set_params after a numeric
            # eta0): its estimate reads X before training.
            defer_finite_check = (
                not first_call
                and not sp.issparse(X)
                and (self.eta0 != "auto" or getattr(self, "_curvature", None) is not None)
            )
            xpd = _array_api.namespace(X)  # None: numpy
            self._check_namespace_penalty(xpd)
            y, sample_weight = _array_api.to_host(y), _array_api.to_host(sample_weight)
            X, y = _validate_data(
                self,
                X,
                y,
                accept_sparse="csr",
                dtype=_array_api.training_dtypes(xpd, None if first_call else self.coef_.dtype),
                order="C",
                reset=first_call,
                ensure_all_finite=not defer_finite_check,
            )
            y = _array_api.to_host(y)
            _check_targets(y)
            if first_call:
                self.classes_ = classes
            unseen = np.setdiff1d(np.unique(y), self.classes_)
            if len(unseen):
                raise ValueError(
                    f"y contains labels {unseen.tolist()} that are not in classes "
                    f"{self.classes_.tolist()} given on the first call."
                )
            y_idx = np.searchsorted(self.classes_, y)
            host_X = X if xpd is None else _array_api.host_stub(X)
            sample_weight = self._sample_weight(host_X, y, y_idx, sample_weight)
            if first_call:
                rng = check_random_state(self.random_state)
                state = self._new_state(X, None, None, sample_weight, incremental=True)
            else:
                rng = copy.deepcopy(self._rng)
                state = self._copy_state(X)
                curvature = getattr(self, "_curvature", None)
                if not self.fit_intercept or self._lazy_l1(X, incremental=True):
                    if state.offset is not None:
                        # The curvature was estimated on centred rows: the uncentred
                        # ones need their own (a step 5x too large, measured on CSR
                        # switched to penalty="l1" mid-stream).
                        curvature = None
                    _recentre(state, None)
                # Hyperparameters changed by set_params apply from this call on, as in
                # SGDClassifier. eta0="auto" keeps the curvature estimated on the first
                # chunk (a new estimate per chunk would make the step jitter) and
                # derives the step from the current batch_size, alpha and momentum.
                state.optimizer.set_hyperparameters(
                    state.params,
                    **self._optimizer_options(X, sample_weight, curvature, state.offset),
                )
            self._train(
                X,
                y_idx,
                sample_weight,
                state,
                rng,
                incremental=True,
                unchecked_X=defer_finite_check,
            )
        return self

    # ------------------------------------------------------------ predict

    def decision_function(self, X):
        """Compute the logits of each class.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        scores : ndarray of shape (n_samples,) or (n_samples, n_classes)
            For two classes, the logit of ``classes_[1]`` against ``classes_[0]``.
        """
        scores = self._logits(X, "decision_function")
        if _array_api.is_xp(scores):
            return _array_api.decision(scores)
        return scores.ravel() if scores.shape[1] == 1 else scores

    def predict(self, X):
        """Most probable class of each sample.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            Labels from ``classes_``, those of the largest logit.
        """
        scores = self._logits(X, "predict")
        if _array_api.is_xp(scores):
            return _array_api.predict_labels(scores, self.classes_)
        if scores.shape[1] == 1:
            return self.classes_[(scores[:, 0] > 0).astype(int)]
        return self.classes_[np.argmax(scores, axis=1)]

    def predict_proba(self, X):
        """Class probabilities by a numerically stable softmax.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Columns in the order of ``classes_``; rows sum to one.
        """
        scores = self._logits(X, "predict_proba")
        if _array_api.is_xp(scores):
            return _array_api.softmax(*_array_api.full_scores(scores))
        return softmax(full_logits(scores), copy=False)

    def predict_log_proba(self, X):
        """Log class probabilities by log-sum-exp, finite even where a probability is 0.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
            Columns in the order of ``classes_``; ``exp`` of each row sums to one.
        """
        scores = self._logits(X, "predict_log_proba")
        if _array_api.is_xp(scores):
            return _array_api.log_softmax(*_array_api.full_scores(scores))
        return log_softmax(full_logits(scores))

    def _logits(self, X, method="predict"):
        check_is_fitted(self)
        xpd = _array_api.check_predict_namespace(self, X, method)  # None: numpy
        X = _validate_data(
            self,
            X,
            accept_sparse="csr",
            dtype=[np.float64, np.float32] if xpd is None else _array_api.float_dtypes(*xpd),
            reset=False,
        )
        Z = safe_sparse_dot(X, self.coef_.T, dense_output=True)
        if sp.issparse(self.coef_):  # after sparsify(): no np.matrix out
            Z = np.asarray(Z)
        return Z + self.intercept_

    def sparsify(self):
        """Store ``coef_`` as a CSR matrix, as ``SGDClassifier.sparsify`` does.

        Worth it when most weights are exactly zero (``penalty="l1"`` or
        "elasticnet" with a large ``alpha``): the matrix takes memory in
        proportion to the non-zeros (prediction may be faster or slower:
        measured on 100,000 x 50,000 CSR, 0.22 s against 0.41 dense at 20
        classes, 0.067 against 0.055 at 5). skops then also lists scipy's
        ``csr_matrix`` among the types to trust; :meth:`densify` before saving
        keeps the recipe of trusting ``SoftmaxRegressor`` alone.
        Training is not affected: it continues from its own dense copy of the
        weights, and ``coef_`` is dense again after the next ``fit`` or
        ``partial_fit``.

        Returns
        -------
        self : SoftmaxRegressor
            Fitted estimator.
        """
        check_is_fitted(self, msg="Estimator, %(name)s, must be fitted before sparsifying.")
        self.coef_ = sp.csr_matrix(self.coef_)
        return self

    def densify(self):
        """Store ``coef_`` as a numpy array again (the inverse of :meth:`sparsify`).

        Returns
        -------
        self : SoftmaxRegressor
            Fitted estimator.
        """
        check_is_fitted(self, msg="Estimator, %(name)s, must be fitted before densifying.")
        if sp.issparse(self.coef_):
            self.coef_ = self.coef_.toarray()
        return self

    # ------------------------------------------------------------ internals

    @contextmanager
    def _rollback_on_error(self):
        """Leave the estimator as it was if the call fails (arrays are never mutated).

        Also shields the call from the caller's np.errstate: non-finite values
        are judged by explicit checks (of the inputs, of divergence), and under
        all="raise" an underflow in exp, or weights cast to float32, leaked out
        as a bare FloatingPointError.
        """
        saved = dict(self.__dict__)
        # A RandomState given as random_state is drawn from in place: a failed call
        # puts its state back too, or the model would not be as it was.
        random_state = self.random_state
        drawn_from = isinstance(random_state, np.random.RandomState)
        state = random_state.get_state() if drawn_from else None
        try:
            with np.errstate(all="ignore"):
                yield
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(saved)
            if drawn_from:
                random_state.set_state(state)
            raise

    def _sample_weight(self, X, y, y_idx, sample_weight):
        with _errors_naming("sample_weight"):  # "could not convert string to float"
            sample_weight = _check_sample_weight(
                sample_weight, X, dtype=X.dtype, ensure_non_negative=True
            )
        if isinstance(self.class_weight, dict):
            _check_class_weight(self.class_weight, self.classes_)
        if self.class_weight is not None:
            class_weight = compute_class_weight(self.class_weight, classes=self.classes_, y=y)
            sample_weight = sample_weight * class_weight[y_idx].astype(X.dtype)
        with np.errstate(over="ignore"):
            total = sample_weight.sum(dtype=np.float64)
        if not np.isfinite(total):
            # Each is finite, but their sum (or a product with class_weight) is not:
            # the mean the weights are divided by would be inf, and every weight 0.
            raise ValueError(
                "The sample weights (times class_weight) are too large: their sum "
                f"overflows {sample_weight.dtype}. Divide sample_weight or class_weight "
                "by a constant; only their ratios matter."
            )
        if not total > 0:
            raise ValueError("The sample weights (times class weights) sum to zero.")
        return sample_weight

    def _eta0(self, X, sample_weight=None, curvature=None, offset=None, saga=False):
        """The initial step; for "auto", from the curvature of ``X`` unless given."""
        if self.eta0 != "auto":
            return float(self.eta0)
        factor = SAGA_STEP_FACTOR if saga else 1.0
        if curvature is None:
            curvature = (
                _array_api.estimate_curvature if _array_api.is_xp(X) else estimate_curvature
            )(
                X,
                fit_intercept=self.fit_intercept,
                sample_weight=sample_weight,
                random_state=self.random_state,
                offset=offset,
            )
        self._curvature = curvature
        eta0 = factor * curvature.eta0(
            binary=len(self.classes_) == 2,
            alpha=Penalty.of(self).l2,
            batch_size=self.batch_size,
            momentum=self.momentum,
        )
        # SAGA's larger step stops short of the penalty's own curvature: past
        # 1 / l2 the L2 shrinkage 1 - eta * l2 would flip the weights' sign.
        l2 = Penalty.of(self).l2
        return min(eta0, (1.0 - self.momentum) / l2) if saga and l2 else eta0

    def _optimizer_options(self, X, sample_weight=None, curvature=None, offset=None, saga=False):
        if self.learning_rate == "optimal" and self.alpha == 0:
            raise ValueError("learning_rate='optimal' needs alpha > 0.")
        if self.nesterov and not self.momentum:
            raise ValueError("nesterov=True needs momentum > 0.")
        return dict(
            learning_rate=self.learning_rate,
            eta0=self._eta0(X, sample_weight, curvature, offset, saga),
            power_t=self.power_t,
            alpha=self.alpha,
            momentum=self.momentum,
            nesterov=self.nesterov,
            average=self.average,
        )

    def _uses_saga(self, X):
        """Whether ``fit`` steps by SAGA: solver "saga", or "auto" on dense X and on
        CSR where SAGA's batches stay cheap.

        On CSR, SAGA's mean gradient touches every weight at every batch. The
        compiled epoch takes those steps just in time (lagged updates), O(nnz)
        a batch, for plain steps without an L1 part: "auto" takes SAGA there.
        Elsewhere the numpy epoch updates every weight per batch, and "auto"
        takes SAGA while the weights are at most twice the non-zeros of a batch
        (measured on 10,000 x 10,000 CSR,
        20 classes, 100 non-zeros a row: 120 ms an epoch against SGD's 48, but
        a gap of 1e-3 in 2 epochs against 16 at alpha=1e-2, and 24 against none
        in 114 at 1e-4, where SGD stopped 3.5e-3 above the optimum).
        """
        if self.solver != "auto" or not sp.issparse(X):
            return self.solver != "sgd"
        n_params = 1 if len(self.classes_) == 2 else len(self.classes_)
        plain = not (self.momentum or self.average) and not Penalty.of(self).l1
        if plain and sparse_saga_compiles(X, n_params):
            return True  # the compiled epoch's lagged updates keep a batch O(nnz)
        nnz_per_batch = X.nnz / max(1, X.shape[0]) * min(self.batch_size, X.shape[0])
        return X.shape[1] <= 2 * nnz_per_batch

    def _feature_offset_for(self, X, sample_weight, incremental=False):
        """The weighted mean of dense X's rows, which training centres implicitly.

        Centring is a reparametrisation of the intercept, ``(X - mu) W^T + b =
        X W^T + (b - W mu)``, so the model is the same; what changes is the
        conditioning. Measured on 28 x 28 images with pixels in [0, 1], it cut
        the top eigenvalue of ``[X, 1]^T [X, 1] / n`` that sizes the step from
        66 to 2.8: a 20x larger step. Sparse X is never densified: its epochs
        keep the rank-one term pending (see ``EpochEngine._run_sparse_epoch``).
        Not without an intercept, where nothing absorbs ``W mu``; nor for sparse X
        trained by plain SGD under an L1 penalty, whose lazy epoch would have to
        apply the L1 step to every weight the rank-one term moves: all of them.
        """
        if not self.fit_intercept or self._lazy_l1(X, incremental):
            return None
        if _array_api.is_xp(X):
            return _array_api.feature_offset(X, sample_weight)
        weights = np.ones(X.shape[0]) if sample_weight is None else sample_weight
        weights = np.asarray(weights, dtype=np.float64) / np.sum(weights, dtype=np.float64)
        with np.errstate(over="ignore", invalid="ignore"):
            offset = safe_sparse_dot(X.T, weights.astype(X.dtype), dense_output=True)
        offset = np.asarray(offset, dtype=X.dtype).ravel()
        return offset if np.isfinite(offset).all() else None

    def _check_namespace_penalty(self, xpd):
        """Under array_api_dispatch, only the L2 penalty (the namespace engine's)."""
        if xpd is not None and Penalty.of(self).l1:
            raise ValueError(
                f"penalty={self.penalty!r} has an L1 part, which the array-API engine "
                "does not apply yet: train on numpy arrays (array_api_dispatch=False, "
                "or X as a numpy array), or use penalty='l2'."
            )

    def _lazy_l1(self, X, incremental):
        """Whether sparse X trains by the lazy (plain SGD) epoch under an L1 penalty."""
        lazy = incremental or not self._uses_saga(X)
        plain = not self.momentum  # averaging is kept lazily too
        return sp.issparse(X) and lazy and plain and Penalty.of(self).l1 > 0

    def _new_state(self, X, coef_init, intercept_init, sample_weight=None, incremental=False):
        params = list(self._initial_params(X, coef_init, intercept_init))
        offset = self._feature_offset_for(X, sample_weight, incremental)
        if offset is not None:  # the given intercept is the uncentred model's
            params[1] += params[0] @ offset
        saga = not incremental and self._uses_saga(X)
        options = self._optimizer_options(X, sample_weight, offset=offset, saga=saga)
        optimizer_class = _array_api.NamespaceOptimizer if _array_api.is_xp(X) else SGDOptimizer
        optimizer = optimizer_class(params, **options)
        return _TrainingState(
            params, optimizer, n_iter=0, loss_curve=[], weight_scale=None, offset=offset
        )

    def _initial_params(self, X, coef_init, intercept_init):
        """Validated copies of the initial weights in X's dtype; zeros where not given."""
        n_params = 1 if len(self.classes_) == 2 else len(self.classes_)
        if _array_api.is_xp(X):  # checked on the host as for numpy, then moved to X's device
            return _array_api.initial_params(
                X,
                n_params,
                coef_init,
                intercept_init,
                lambda c, b: self._initial_params(_array_api.host_features(X), c, b),
            )
        shape = (n_params, X.shape[1])
        if coef_init is None:
            coef = np.zeros(shape, dtype=X.dtype, order=_weights_order(X))
        else:
            coef = _init_array(coef_init, "coef_init", X.dtype, _weights_order(X))
            if n_params == 1 and coef.ndim == 1:
                coef = coef.reshape(1, -1)  # SGDClassifier's binary coef_init shape
            if coef.shape != shape:
                raise ValueError(f"coef_init has shape {coef.shape}, expected {shape}.")
            if not np.isfinite(coef).all():
                raise ValueError("coef_init contains NaN or infinity.")
        if intercept_init is None:
            intercept = np.zeros(n_params, dtype=X.dtype)
        else:
            intercept = _init_array(intercept_init, "intercept_init", X.dtype)
            if intercept.ndim <= 1:
                intercept = intercept.reshape(-1)  # a scalar for two classes
            if intercept.shape != (n_params,):
                raise ValueError(
                    f"intercept_init has shape {intercept.shape}, expected ({n_params},)."
                )
            if not np.isfinite(intercept).all():
                raise ValueError("intercept_init contains NaN or infinity.")
        if coef_init is not None or intercept_init is not None:
            _check_initial_logits(X, coef, intercept)
        return coef, intercept

    def _copy_state(self, X):
        """Working copies of the fitted state, so a failed call changes nothing.

        The weights are copied in the memory order of X's engine (see
        ``_weights_order``); the copy a rollback needs anyway does any change.
        """
        if _array_api.is_xp(X) or _array_api.is_xp(self._raw_coef):
            # Fitted in another namespace (or device) than X's: the state moves to X's.
            return _array_api.move_state(
                _TrainingState(*_array_api.copied_state(self)), X, _weights_order(X)
            )
        order = _weights_order(X)
        # In X's dtype too: a warm start on float32 data after float64 trains in float32.
        params = [
            np.array(self._raw_coef, dtype=X.dtype, order=order),
            self._raw_intercept.astype(X.dtype),
        ]
        optimizer = copy.deepcopy(self._optimizer)
        for buffers in (optimizer.velocities, optimizer.averages):
            if buffers is not None:
                buffers[0] = np.asarray(buffers[0], dtype=X.dtype, order=order)
                buffers[1] = np.asarray(buffers[1], dtype=X.dtype)
        if getattr(optimizer, "l1_applied", None) is not None:
            optimizer.l1_applied = np.asarray(optimizer.l1_applied, order=order)
        return _TrainingState(
            params,
            optimizer,
            n_iter=self.n_iter_,
            loss_curve=list(self.loss_curve_),
            # A model pickled before the scale was kept: each call's own mean, as then.
            weight_scale=getattr(self, "_weight_scale", None),
            # A model pickled before centring: trained uncentred.
            offset=getattr(self, "_feature_offset", None),
        )

    def _validation_split(self, y_idx, sample_weight):
        """Stratified (train rows, validation rows), both in storage order.

        A split of its own, drawn anew from random_state: with an int seed every
        warm-started fit holds out the same rows, so none leak into training.
        """
        splitter = StratifiedShuffleSplit(
            n_splits=1,
            test_size=self.validation_fraction,
            random_state=check_random_state(self.random_state),
        )
        try:
            train, validation = next(splitter.split(np.zeros((len(y_idx), 1)), y_idx))
        except ValueError as exc:
            raise ValueError(
                f"early_stopping=True could not hold out a stratified "
                f"validation_fraction={self.validation_fraction} of {len(y_idx)} samples "
                f"({exc}). Use more data, a larger validation_fraction, or "
                f"early_stopping=False."
            ) from exc
        train, validation = np.sort(train), np.sort(validation)
        for part, rows in [("training", train), ("validation", validation)]:
            if not sample_weight[rows].sum() > 0:
                raise ValueError(
                    f"early_stopping=True drew a {part} set whose sample weights are "
                    "all zero. Give more rows non-zero weight, change "
                    "validation_fraction or random_state, or use early_stopping=False."
                )
        return train, validation

    def _validation_score(self, X, y_idx, rows, weights, coef, intercept):
        """Negated weighted log-loss or weighted accuracy on ``X[rows]``, in chunks."""
        if _array_api.is_xp(X):
            return _array_api.validation_score(
                X, y_idx, rows, weights, coef, intercept, self.scoring
            )
        total = 0.0
        for start in range(0, len(rows), _SCORING_CHUNK):
            chunk = rows[start : start + _SCORING_CHUNK]
            Z = full_logits(safe_sparse_dot(X[chunk], coef.T, dense_output=True) + intercept)
            w = weights[chunk].astype(np.float64)
            if self.scoring == "loss":
                log_p = log_softmax(Z.astype(np.float64))
                total -= w @ -log_p[np.arange(len(chunk)), y_idx[chunk]]
            else:
                total += w @ (np.argmax(Z, axis=1) == y_idx[chunk])
        return total / weights[rows].astype(np.float64).sum()

    def _train(self, X, y_idx, sample_weight, state, rng, *, incremental, unchecked_X=False):
        """Train ``state`` on ``X`` and, on success, make it the fitted model.

        ``fit`` runs up to ``max_iter`` epochs under :class:`sksoftmax._loop.FitLoop`;
        ``partial_fit`` one epoch by :func:`sksoftmax._loop.partial_epoch`. ``unchecked_X``
        (``partial_fit`` only): X was not checked for NaN and infinity yet.
        """
        early_stopping = self.early_stopping and not incremental
        train_rows, validation_rows = (
            self._validation_split(y_idx, sample_weight) if early_stopping else (None, None)
        )
        n_train = X.shape[0] if train_rows is None else len(train_rows)
        weights = _scaled_weights(sample_weight, train_rows, state)
        if not self.fit_intercept:
            # set_params(fit_intercept=False) on a fitted model: the intercept is 0.
            state.params[1][...] = 0.0
            for buffers in (state.optimizer.velocities, state.optimizer.averages):
                if buffers is not None:
                    buffers[1][...] = 0.0
        engine = (NamespaceEngine if _array_api.is_xp(X) else EpochEngine)(
            X,
            state.params[0].shape[0],
            # A partial_fit chunk smaller than batch_size steps in proportion to
            # its size, as a fit's ragged last batch does: each row weighs the same
            # however the stream is cut (one-row chunks of eta0="auto" used to take
            # full steps, and the model depended on the order of the rows).
            self.batch_size if incremental else min(self.batch_size, n_train),
            sparse_kernels=compiled_sparse_rule(
                state.optimizer, Penalty.of(self), saga=not incremental and self._uses_saga(X)
            ),
        )
        run = EpochRunner(
            self, X, y_idx, weights, train_rows, state, rng, engine, incremental=incremental
        )
        with _InterruptFlag() as interrupt, _limit_blas_threads(engine.blas_threads()):
            run.stop_requested = interrupt.requested
            if incremental:
                partial_epoch(run, unchecked_X)
            else:
                FitLoop(run, sample_weight, train_rows, validation_rows).fit()
        if run.interrupted:
            warnings.warn(
                "Training interrupted by user; the model keeps the weights reached so far"
                + (" (the best on the validation set)." if early_stopping else "."),
                UserWarning,
                stacklevel=4,
            )
        self._publish(state, rng, run.epochs, incremental)

    def _published_params(self, state):
        """``(coef, intercept)`` the model predicts with: averaged, and uncentred."""
        optimizer = state.optimizer
        coef, intercept = optimizer.averages if optimizer.averaged() else state.params
        if state.offset is not None:
            intercept = intercept - coef @ state.offset
        return coef, intercept

    def _publish(self, state, rng, epochs, incremental):
        coef, intercept = state.params
        self._raw_coef, self._raw_intercept = coef, intercept
        self._feature_offset = state.offset
        self._optimizer = state.optimizer
        self._rng = rng
        self._weight_scale = state.weight_scale
        self.coef_, self.intercept_ = self._published_params(state)
        self.t_ = state.optimizer.t
        self.n_iter_ = state.n_iter if incremental else epochs
        self.loss_curve_ = state.loss_curve
        best = getattr(state, "best_loss", None)
        self.best_loss_ = min(state.loss_curve, default=np.inf) if best is None else best
        self.validation_scores_ = state.validation_scores
        self.best_validation_score_ = state.best_validation_score

    def _raise_diverged(self, optimizer, epoch, value=None, start=None):
        rise = (
            ""
            if value is None or not np.isfinite(value)
            else f" (the objective rose from {start:.4g} to {value:.4g})"
        )
        raise ValueError(
            f"Training diverged in epoch {epoch}: the loss blew up (non-finite, logits past "
            f"{MAX_LOGIT:.0e}, or above twice its start){rise} with "
            f"learning_rate={self.learning_rate!r} at step eta={optimizer.current_eta():.3g} "
            f"(eta0={self.eta0!r}). Use a smaller eta0 (eta0='auto' picks a safe one), "
            "learning_rate='adaptive' (which backs off by itself), or scale the features, "
            "e.g. with StandardScaler. The estimator was not changed."
        )

    def _warn_rose(self, optimizer, rule, value):
        warnings.warn(
            f"The training objective rose over the last {self.n_iter_no_change} epochs, "
            f"from {rule.best:.6g} (epoch {rule.best_epoch}) to {value:.6g}, with "
            f"learning_rate={self.learning_rate!r} at step eta={optimizer.current_eta():.3g}: "
            "the step is too large. The model keeps the best weights, of epoch "
            f"{rule.best_epoch}. Use a smaller eta0, or learning_rate='adaptive', which "
            "shrinks the step by itself.",
            ConvergenceWarning,
            stacklevel=8,  # the caller of fit
        )

    def _print_epoch(self, epoch, loss, validation_scores, optimizer, start_time):
        line = f"Epoch {epoch}, loss: {loss:.6f}"
        if validation_scores:
            line += f", validation {self.scoring}: {abs(validation_scores[-1]):.6f}"
        line += (
            f", eta: {optimizer.current_eta():.4g}, "
            f"elapsed: {time.perf_counter() - start_time:.2f} s"
        )
        print(line, flush=True)

    # ------------------------------------------------------------ persistence

    def __getstate__(self):
        """State for pickle and skops: private helper objects as plain dicts.

        BaseEstimator's state (``__dict__`` and ``_sklearn_version``) with each
        optimiser-state object turned into a dict of arrays and builtins
        (``sksoftmax._persistence``), so that skops trusts everything in the
        file but this class.
        """
        from ._persistence import to_plain

        return to_plain(super().__getstate__())

    def __setstate__(self, state):
        """Rebuild the helper objects; states with the objects themselves load too."""
        from ._persistence import from_plain

        super().__setstate__(from_plain(state))


def _check_class_weight(class_weight, classes):
    """Raise ValueError unless ``class_weight`` maps labels of ``classes`` to weights.

    Each weight must be a finite non-negative real number (not a bool):
    scikit-learn's compute_class_weight takes anything float() takes.
    """
    known = classes.tolist()
    unknown = [label for label in class_weight if label not in known]
    if unknown:
        raise ValueError(
            f"class_weight has labels {_short_repr(unknown)} that are not among the "
            f"classes {_short_repr(known)}."
        )
    for label, weight in class_weight.items():
        valid = isinstance(weight, Real) and not isinstance(weight, (bool, np.bool_))
        if not (valid and np.isfinite(weight) and weight >= 0):
            raise ValueError(
                f"class_weight[{label!r}] must be a finite non-negative number, "
                f"got {_short_repr(weight)}."
            )


def _validate_data(estimator, X, y="no_validation", **kwargs):
    """scikit-learn's validate_data, whose errors say which argument is wrong.

    Many of its messages ("Found array with 0 sample(s)", "could not convert
    string to float", "Complex data not supported") do not: they get "Invalid
    X: " or "Invalid y: " in front, the message itself unchanged.
    """
    try:
        return validate_data(estimator, X, y, **kwargs)
    except (ValueError, TypeError) as exc:
        culprit = "X"
        if not (isinstance(y, str) and y == "no_validation"):
            try:  # X alone; what this sets on the estimator, fit's rollback undoes
                validate_data(estimator, X, **kwargs)
                culprit = "y"
            except (ValueError, TypeError):
                pass
        named = _name_argument(exc, culprit)
        if named is exc:
            raise
        raise named from exc


def _check_targets(y):
    """check_classification_targets, whose errors ("Unknown label type") name y."""
    _named(check_classification_targets, "y", y)


def _named(function, name, value):
    """``function(value)``, whose ValueError or TypeError names argument ``name``."""
    with _errors_naming(name):
        return function(value)


@contextmanager
def _errors_naming(name):
    """Context whose ValueError or TypeError names argument ``name``."""
    try:
        yield
    except (ValueError, TypeError) as exc:
        named = _name_argument(exc, name)
        if named is exc:
            raise
        raise named from exc


def _name_argument(exc, name):
    """``exc`` with "Invalid ``name``: " in front of its message unless it names ``name``.

    The same exception where its message is its one argument; else (numpy's
    UFuncTypeError, say) a new ValueError or TypeError of that message.
    """
    message = str(exc)
    if re.search(rf"(?<!\w){re.escape(name)}(?!\w)", message):
        return exc
    if exc.args == (message,):
        exc.args = (f"Invalid {name}: {message}",)
        return exc
    return (ValueError if isinstance(exc, ValueError) else TypeError)(f"Invalid {name}: {message}")


def _check_initial_logits(X, coef, intercept):
    """Raise ValueError if the initial weights put a logit on X past MAX_LOGIT.

    Such weights (coef_init=1e300, say) carry no information and start
    training diverged: the fuzz saw one returned as the model, its loss inf.
    """
    for start in range(0, X.shape[0], _SCORING_CHUNK):
        Z = safe_sparse_dot(X[start : start + _SCORING_CHUNK], coef.T, dense_output=True)
        if not np.abs(Z + intercept).max(initial=0.0) < MAX_LOGIT:  # NaN or inf too
            raise ValueError(
                f"coef_init and intercept_init put logits past {MAX_LOGIT:.0e} on X, "
                "where softmax carries no information: start from smaller weights "
                "(or None, zeros)."
            )


def _init_array(value, name, dtype, order="C"):
    """``value`` as a new ``dtype`` array, or a ValueError that names ``name``.

    Bare numpy would say "could not convert string to float" or "setting an
    array element with a sequence", and turn a sparse matrix into an object
    scalar, or drop the imaginary part of complex numbers with a warning.
    """
    if sp.issparse(value):
        raise ValueError(
            f"{name} must be a dense array, got a sparse {type(value).__name__}; "
            f"pass {name}.toarray()."
        )
    try:
        array = np.asarray(value)
    except (ValueError, TypeError) as exc:  # ragged nested lists
        raise ValueError(f"{name} must be a rectangular array of numbers: {exc}") from None
    if array.dtype.kind not in "biufO":
        raise ValueError(f"{name} must hold real numbers, got an array of dtype {array.dtype}.")
    try:
        return np.array(array, dtype=dtype, order=order)
    except (ValueError, TypeError) as exc:  # objects that are not numbers
        raise ValueError(f"{name} must hold real numbers: {exc}") from None


def _short_repr(value, limit=200):
    """``repr(value)``, cut to ``limit`` characters for an error message."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _weights_order(X):
    """Memory order of ``coef`` for training on X.

    "C" (class-major) for dense X, whose engines read one class's weights as a
    row. "F" for sparse X, whose engine reads one feature's weights for all
    classes: ``coef.T`` is then its C-ordered working array as it is, with no
    transposed copy of the model in and out of every epoch (at 200,000
    features x 20 classes those two copies cost more than a 1,000-row epoch).
    """
    return "F" if sp.issparse(X) else "C"


def _recentre(state, offset):
    """Move ``state`` to another centring ``offset`` (None: uncentred), exactly.

    The centred intercept is ``b + W mu``, so every intercept-shaped quantity
    (the parameter, its velocity, its average) moves by ``W (mu' - mu)`` of its
    weight-shaped partner; the model's predictions do not change.
    """
    if _array_api.is_xp(state.params[0]):
        return _array_api.recentre(state, offset)
    old = state.offset
    if old is None and offset is None:
        return
    dtype = state.params[0].dtype
    shift = (0.0 if offset is None else offset.astype(dtype)) - (
        0.0 if old is None else old.astype(dtype)
    )
    optimizer = state.optimizer
    for pair in (state.params, optimizer.velocities, optimizer.averages):
        if pair is not None:
            pair[1] = pair[1] + pair[0] @ shift
    state.offset = offset


def _scaled_weights(sample_weight, train_rows, state):
    """Sample weights over the scale of the call that started the model; None for ones.

    Scaled so that a batch's mean of ``w_i * grad_i`` estimates the full weighted
    mean. partial_fit keeps the scale of the call that started the model, so
    that weights keep their size from chunk to chunk (a chunk of weight 0.5
    moves the model half as far, a chunk of one class feels its class_weight).
    """
    train_weight = sample_weight if train_rows is None else sample_weight[train_rows]
    if state.weight_scale is None:
        # In float64 (float32 sums of large weights overflow); a Python float
        # keeps the weights in X's dtype.
        state.weight_scale = float(train_weight.mean(dtype=np.float64))
    scale = state.weight_scale
    return None if np.all(sample_weight == scale) else sample_weight / scale


class _TrainingState:
    """Working copies of the parameters and optimiser for one training call."""

    def __init__(self, params, optimizer, n_iter, loss_curve, weight_scale, offset=None):
        self.params = params
        self.optimizer = optimizer
        self.n_iter = n_iter
        self.loss_curve = loss_curve
        # Mean sample weight (times class weight) of the call that started the
        # model: every call divides its weights by it. None: this call's own mean.
        self.weight_scale = weight_scale
        # The mean of the rows the engine centres implicitly (dense X with an
        # intercept); None: not centred. params[1] is the centred intercept.
        self.offset = offset
        # Set by a fit: the objective of the returned weights; the validation record.
        self.best_loss = None
        self.validation_scores = None
        self.best_validation_score = None


class _PendingCtrlC:
    """A Ctrl-C that ended a fit, until the user has control back.

    The first Ctrl-C in a fit only ends that fit. In a loop of fits (a grid
    search with n_jobs=1, a loop of partial_fit calls) the next fit starts at
    once, and the user, who has not got control back, presses again: that
    press must stop everything. So the press stays pending while fits follow
    one another, and a pending press makes the next Ctrl-C in any fit raise
    KeyboardInterrupt at once. Python cannot tell when the user gets control
    back (a prompt, the end of a script); what it can tell is that no fit ran
    for a while: the press is dropped once ``GAP`` seconds have passed between
    the end of a fit and the start of the next, or when a KeyboardInterrupt
    leaves a fit. Only fits in the main thread, which own SIGINT, take part.
    """

    GAP = 10.0  # seconds; the time a grid search spends between fits is far less

    def __init__(self):
        self._last_fit_end = None  # time.monotonic() while a press is pending

    def record(self):
        self._last_fit_end = time.monotonic()

    def fit_ended(self):
        if self._last_fit_end is not None:
            self._last_fit_end = time.monotonic()

    def clear(self):
        self._last_fit_end = None

    def active(self):
        """Whether a press is pending; drops one older than ``GAP`` seconds."""
        if self._last_fit_end is not None and time.monotonic() - self._last_fit_end > self.GAP:
            self._last_fit_end = None
        return self._last_fit_end is not None


_pending_ctrl_c = _PendingCtrlC()


class _InterruptFlag:
    """Turn Ctrl-C during training into a request to stop after the current batch.

    Only the main thread can install signal handlers; elsewhere (and when
    somebody else already handles SIGINT) a KeyboardInterrupt raised inside the
    loop is caught by the caller instead.
    """

    def __init__(self):
        self._requested = False
        self._previous = None

    def requested(self):
        return self._requested

    def _handle(self, signum, frame):
        self._requested = True
        _pending_ctrl_c.record()
        # A second Ctrl-C in this fit interrupts at once, in a later fit too
        # (see _PendingCtrlC).
        signal.signal(signal.SIGINT, self._previous)

    def _handle_second(self, signum, frame):
        # requested() makes _train re-raise this rather than take it for a first press.
        self._requested = True
        signal.signal(signal.SIGINT, self._previous)
        raise KeyboardInterrupt(
            "a second Ctrl-C: the first one ended an earlier fit of this loop of fits"
        )

    def __enter__(self):
        if (
            threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGINT) is signal.default_int_handler
        ):
            handler = self._handle_second if _pending_ctrl_c.active() else self._handle
            self._previous = signal.signal(signal.SIGINT, handler)
        return self

    def __exit__(self, exc_type, exc_value, traceback):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            if exc_type is not None and issubclass(exc_type, KeyboardInterrupt):
                _pending_ctrl_c.clear()  # the user gets control back
            else:
                _pending_ctrl_c.fit_ended()
        return False
