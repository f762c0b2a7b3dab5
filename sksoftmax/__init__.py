"""sksoftmax: multinomial softmax regression trained by minibatch SGD, for scikit-learn."""

from ._softmax_regressor import SoftmaxRegressor

__all__ = ["SoftmaxRegressor"]
__version__ = "0.1.0"
