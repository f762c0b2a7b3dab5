"""Demo: ``python -m sksoftmax`` trains SoftmaxRegressor next to LogisticRegression.

Run ``python -m sksoftmax --help`` for the options.
"""

import sys

from ._cli import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
