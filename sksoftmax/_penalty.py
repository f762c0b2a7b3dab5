r"""The penalty on the weights: L2, L1 and elastic-net, written once for every engine.

The objective's penalty is SGDClassifier's

.. math::

    \alpha \left( r \lVert W \rVert_1 + \frac{1 - r}{2} \lVert W \rVert_F^2 \right)

with ``r = l1_ratio`` (the intercept is not penalised). It splits into a
smooth part, the L2 strength ``l2 = alpha * (1 - r)``, which enters every
step as part of the gradient (``l2 * W``), and a non-smooth part, the L1
strength ``l1 = alpha * r``, which enters after the step, as one of two rules:

- **proximal** (SAGA): soft-thresholding, ``w <- sign(w) max(|w| - eta l1, 0)``,
  the proximal operator of ``eta * l1 * |w|``. Proximal SAGA converges to the
  exact optimum of the penalised objective (Defazio, Bach and Lacoste-Julien,
  2014), with exact zeros;
- **cumulative** (plain SGD): the cumulative penalty of Tsuruoka, Tsujii and
  Ananiadou (2009), as SGDClassifier applies it. ``u`` is the total L1
  penalty a weight could have received so far (``sum_t eta_t l1``) and
  ``q_j`` what it did receive; a weight is moved towards zero by what it is
  still owed, ``u + q_j`` or ``u - q_j``, and clipped at zero. Noisy steps
  that push a weight off zero then meet the penalty they skipped, so the
  weights of useless features stay exactly zero. The rule only reads a
  weight's own ``u`` and ``q``, so a sparse epoch applies it to the features
  of each batch only, as they are touched, at a cost that follows the
  non-zeros; applying it twice in a row changes nothing.

The engines ask this object for the numbers (``l2``, ``l1``, the rule) and
apply the same formulas: :func:`soft_threshold_` and :func:`cumulative_l1_`
here for numpy, their loops in :mod:`sksoftmax._compiled`.
"""

import numpy as np

PENALTIES = ("l2", "l1", "elasticnet")


class Penalty:
    """The penalty ``alpha * (l1_ratio * |W|_1 + 0.5 * (1 - l1_ratio) * |W|^2)``.

    Parameters
    ----------
    alpha : float
        Overall strength, >= 0.
    penalty : {"l2", "l1", "elasticnet"} or None, default="l2"
        None means no penalty at all (``alpha`` is then still the "optimal"
        schedule's constant, as in SGDClassifier).
    l1_ratio : float, default=0.15
        Share of L1, used only by "elasticnet" ("l2" is 0, "l1" is 1).

    Attributes
    ----------
    l2 : float
        Strength of the smooth part: ``alpha * (1 - l1_ratio)``.
    l1 : float
        Strength of the L1 part: ``alpha * l1_ratio``.
    """

    def __init__(self, alpha, penalty="l2", l1_ratio=0.15):
        ratio = {"l2": 0.0, "l1": 1.0, "elasticnet": float(l1_ratio), None: 0.0}[penalty]
        strength = 0.0 if penalty is None else float(alpha)
        self.l1 = strength * ratio
        self.l2 = strength * (1.0 - ratio) if ratio < 1.0 else 0.0

    @classmethod
    def of(cls, estimator):
        """The penalty of an estimator's ``alpha``, ``penalty`` and ``l1_ratio``."""
        return cls(estimator.alpha, estimator.penalty, estimator.l1_ratio)

    def value(self, coef):
        """The penalty at ``coef``, in float64, with no temporary of coef's size
        for the L2 part.

        Parameters
        ----------
        coef : ndarray of shape (n_params, n_features)

        Returns
        -------
        value : float
        """
        total = 0.0
        if self.l2:
            total += 0.5 * self.l2 * float(np.einsum("ij,ij->", coef, coef, dtype=np.float64))
        if self.l1:
            total += self.l1 * float(np.abs(coef).sum(dtype=np.float64))
        return total

    def decay(self, eta, share=1.0):
        """The factor ``1 - eta * l2 * share`` by which a step shrinks every weight."""
        return 1.0 - eta * self.l2 * share


def soft_threshold_(coef, threshold):
    """``coef <- sign(coef) * max(|coef| - threshold, 0)``, in place (the L1 prox).

    Parameters
    ----------
    coef : ndarray
    threshold : float
        ``eta * l1`` (times the batch's share), >= 0.
    """
    magnitude = np.abs(coef)
    magnitude -= threshold
    np.maximum(magnitude, 0.0, out=magnitude)
    np.copysign(magnitude, coef, out=coef)


def cumulative_l1_(weights, applied, total, scale=1.0):
    """Tsuruoka et al.'s cumulative L1 penalty on ``scale * weights``, in place.

    ``w = scale * weights``; positive ``w`` goes to ``max(0, w - (total +
    applied))``, negative ``w`` to ``min(0, w + (total - applied))``, and
    ``applied`` (the penalty received, negative for positive weights) grows by
    the change. Idempotent: a second call with the same ``total`` changes nothing.

    Parameters
    ----------
    weights : ndarray
        The stored weights (any shape), updated in place.
    applied : ndarray of float64, same shape
        ``q``: penalty each weight received so far, updated in place.
    total : float
        ``u``: penalty a weight could have received so far.
    scale : float, default=1.0
        The sparse epochs' pending L2 scale: true weights are ``scale * weights``.
    """
    true = weights.astype(np.float64) * scale
    moved = np.where(
        true > 0,
        np.maximum(0.0, true - (total + applied)),
        np.where(true < 0, np.minimum(0.0, true + (total - applied)), true),
    )
    applied += moved - true
    weights[...] = moved / scale
