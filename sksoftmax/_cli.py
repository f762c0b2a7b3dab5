"""The ``python -m sksoftmax`` demo: SoftmaxRegressor next to LogisticRegression."""

import argparse
import csv
import math
import os
import sys
import time
import unicodedata
import warnings
from array import array
from pathlib import Path

import numpy as np
from sklearn import datasets as sk_datasets
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, log_loss
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import check_random_state

from . import __version__
from ._penalty import Penalty
from ._softmax_regressor import SoftmaxRegressor

PROG = "python -m sksoftmax"

# Exit statuses. 130 and 141 are what a shell reports for a program that
# SIGINT or SIGPIPE ended, as they end most Unix tools.
OK, FAILED, BAD_INPUT, INTERRUPTED, BROKEN_PIPE = 0, 1, 2, 130, 141

# An error message is one line of at most this many characters.
MAX_MESSAGE = 500

# A CSV line (the header of a million columns is ~10 Mi characters) is read
# at most this far: a huge file with no newline is refused before it fills
# the memory.
MAX_LINE_CHARS = 2**25

# Cells pandas reads as missing (its default na_values), and "?" of the UCI files.
_MISSING = {
    "",
    "#N/A",
    "#N/A N/A",
    "#NA",
    "-1.#IND",
    "-1.#QNAN",
    "-NaN",
    "-nan",
    "1.#IND",
    "1.#QNAN",
    "<NA>",
    "N/A",
    "NA",
    "NULL",
    "NaN",
    "None",
    "n/a",
    "nan",
    "null",
    "?",
}

_BUNDLED = {
    "iris": sk_datasets.load_iris,
    "digits": sk_datasets.load_digits,
    "wine": sk_datasets.load_wine,
    "breast_cancer": sk_datasets.load_breast_cancer,
}
DATASETS = (*_BUNDLED, "fashion-mnist")

_DESCRIPTION = """\
Train a multinomial softmax regression (sksoftmax.SoftmaxRegressor, minibatch
SAGA or SGD) and scikit-learn's LogisticRegression (L-BFGS) on the same data,
each in a Pipeline after a StandardScaler, and print their test accuracy, test
log-loss, training objective, fit time and number of epochs (--verbose: one
line per epoch while SoftmaxRegressor trains).

LogisticRegression gets C = 1 / (alpha * n_train), which makes its objective
the one SoftmaxRegressor minimises: mean training log-loss + alpha/2 ||W||^2,
shown as "train obj", and the line under the table says how far apart the two
are. SoftmaxRegressor stops once it estimates it is within --tol (relative) of
the optimum."""

_EPILOG = """\
datasets:
  iris, digits, wine, breast_cancer
                 bundled with scikit-learn (no network); split 75/25, stratified
  fashion-mnist  70,000 28x28 clothing images in 10 classes, downloaded from
                 OpenML on first use and cached (see --data-home), or read from
                 the original IDX files (see --idx-folder); canonical
                 60,000/10,000 split. Training takes minutes: try --max-samples.
  FILE.csv       your own data: a header row, numeric feature columns and a
                 class column named by --target; split 75/25, stratified
                 (FILE.tsv: the same, tab-separated)

examples:
  python -m sksoftmax
  python -m sksoftmax --dataset digits --plot digits.png
  python -m sksoftmax --dataset fashion-mnist --max-samples 10000 --verbose
  python -m sksoftmax --dataset measurements.csv --target species

exit status: 0 on success, 1 when the data cannot be downloaded (or memory
runs out), 2 for invalid arguments, unusable input files, or settings that
training fails with, 130 on Ctrl-C, 141 when the output pipe closes early."""


class InputError(Exception):
    """A problem with the user's arguments or files: one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise InputError(message)


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _float_in(low, high, *, low_open=False, high_open=True):
    def parse(text):
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        too_low = value <= low if low_open else value < low
        too_high = high is not None and (value >= high if high_open else value > high)
        if not np.isfinite(value) or too_low or too_high:
            interval = f"{'(' if low_open else '['}{low}, {high if high is not None else 'inf'})"
            raise argparse.ArgumentTypeError(f"expected a number in {interval}, got {text!r}")
        return value

    return parse


def _eta0(text):
    return "auto" if text == "auto" else _float_in(0, None, low_open=True)(text)


def _delimiter(text):
    # A shell passes --delimiter '\t' as backslash + t; nobody means a
    # two-character delimiter, which the csv module rejects anyway.
    if text == "\\t":
        return "\t"
    if len(text) != 1 or text in '"\r\n':
        raise argparse.ArgumentTypeError(
            "expected a single character other than a quote or a newline, "
            f"or \\t for tab, got {text!r}"
        )
    return text


def build_parser(prog=PROG):
    parser = _Parser(
        prog=prog,
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    data = parser.add_argument_group("data")
    data.add_argument(
        "--dataset",
        default="iris",
        metavar="NAME|FILE.csv",
        help=f"one of {', '.join(DATASETS)}, or a CSV file (default: %(default)s)",
    )
    data.add_argument(
        "--target", metavar="COLUMN", help="the class column of a CSV file (required for CSV)"
    )
    data.add_argument(
        "--delimiter",
        type=_delimiter,
        metavar="CHAR",
        help="CSV field delimiter, one character; \\t for tab (default: tab for a "
        "*.tsv file, ',' otherwise)",
    )
    data.add_argument(
        "--test-size",
        type=_float_in(0, 1, low_open=True),
        default=0.25,
        metavar="FRACTION",
        help="fraction held out for testing (default: %(default)s; "
        "fashion-mnist keeps its own 10,000-image test set)",
    )
    data.add_argument(
        "--max-samples",
        type=_positive_int,
        metavar="N",
        help="train on a stratified random subset of N training samples",
    )
    data.add_argument(
        "--data-home",
        metavar="DIR",
        help="fashion-mnist: OpenML cache folder (default: scikit-learn's, "
        "~/scikit_learn_data or $SCIKIT_LEARN_DATA)",
    )
    data.add_argument(
        "--idx-folder",
        metavar="DIR",
        help="fashion-mnist: read the four original *-ubyte.gz IDX files from DIR "
        "instead of OpenML",
    )
    model = parser.add_argument_group("SoftmaxRegressor")
    model.add_argument(
        "--alpha",
        type=_float_in(0, None),
        default=1e-4,
        help="penalty strength (default: %(default)s)",
    )
    model.add_argument(
        "--penalty",
        choices=("l2", "l1", "elasticnet", "none"),
        default="l2",
        help="penalty on the weights; l1 and elasticnet give exact zeros, and "
        "LogisticRegression then uses saga (default: %(default)s)",
    )
    model.add_argument(
        "--l1-ratio",
        type=_float_in(0, 1),
        default=0.15,
        help="share of L1 with --penalty elasticnet (default: %(default)s)",
    )
    model.add_argument(
        "--eta0", type=_eta0, default="auto", help="initial step, or 'auto' (default: auto)"
    )
    model.add_argument(
        "--learning-rate",
        choices=("constant", "optimal", "invscaling", "adaptive"),
        default="adaptive",
        help="step-size schedule (default: %(default)s)",
    )
    model.add_argument(
        "--batch-size",
        type=_positive_int,
        default=128,
        metavar="N",
        help="samples per SGD step (default: %(default)s)",
    )
    model.add_argument(
        "--max-iter",
        type=_positive_int,
        default=1000,
        metavar="N",
        help="maximum number of epochs (default: %(default)s)",
    )
    model.add_argument(
        "--tol",
        type=_float_in(0, None),
        default=1e-4,
        help="stop once the training objective is estimated within this, relative, of "
        "its optimum (default: %(default)s)",
    )
    model.add_argument(
        "--solver",
        choices=("auto", "saga", "sgd"),
        default="auto",
        help="minibatch SAGA or plain SGD; auto: SAGA (default: %(default)s)",
    )
    model.add_argument(
        "--early-stopping",
        action="store_true",
        help="hold out 10%% of the training data and stop when its log-loss stalls",
    )
    output = parser.add_argument_group("output")
    output.add_argument(
        "--plot",
        metavar="FILE.png",
        help="save a figure (SoftmaxRegressor's loss curve and test confusion matrix); "
        "the extension picks the format (png, pdf, svg, ...), .png is added when there "
        "is none; needs matplotlib",
    )
    output.add_argument(
        "--verbose", action="store_true", help="print a line per epoch of SoftmaxRegressor"
    )
    # Before --verbose, the epoch lines were on by default and --quiet turned them off.
    output.add_argument("--quiet", action="store_true", help=argparse.SUPPRESS)
    output.add_argument(
        "--random-state",
        type=int,
        default=0,
        metavar="SEED",
        help="seed for the split and the SGD shuffling (default: %(default)s)",
    )
    return parser


# ---------------------------------------------------------------------- data


class _Data:
    def __init__(self, name, X_train, X_test, y_train, y_test, class_names, classes):
        self.name = name
        self.X_train, self.X_test = X_train, X_test
        self.y_train, self.y_test = y_train, y_test
        # The labels of all classes, in the order of class_names: either split may lack some.
        self.class_names, self.classes = class_names, classes
        self.n_samples = len(y_train) + len(y_test)
        self.n_train_available = len(y_train)  # before --max-samples


def _plain(value):
    """A numpy scalar as the Python value it holds: messages show 1, not np.int64(1)."""
    return value.item() if isinstance(value, np.generic) else value


def _dataset_key(text):
    key = text.strip().lower().replace("-", "_")
    if key in _BUNDLED:
        return key
    if key in ("fashion_mnist", "fashionmnist"):
        return "fashion-mnist"
    return None


def _looks_like_path(text):
    return text.lower().endswith((".csv", ".txt", ".tsv")) or os.sep in text or "/" in text


def _parse_labels(values):
    """Labels as int when they all are integers (so 10 sorts after 9), else str.

    Not when two different labels would become the same int ("1" and "01", or
    "1" and "+1"): they stay distinct classes, as str. "+1" / "-1" alone are ints.
    """
    try:
        numbers = [int(v) for v in values]
    except ValueError:
        return np.array(values, dtype=object)
    if len(set(numbers)) != len(set(values)):
        return np.array(values, dtype=object)
    return np.array(numbers)


def _first_unusable(cells):
    """Index of the first cell that is not a finite number, or None."""
    for j, cell in enumerate(cells):
        try:
            if math.isfinite(float(cell)):
                continue
        except ValueError:
            pass
        return j
    return None


def read_csv(path, target, delimiter=","):
    """Read numeric features and a class column from a CSV file with a header.

    Returns ``(X, y, feature_names)``; raises InputError with a one-line
    message for anything the demo cannot use. Blank lines are skipped.
    """
    where = f"CSV file {str(path)!r}"
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(_bounded_lines(f, where), delimiter=delimiter)
            return _parse_csv(reader, target, where, delimiter)
    except FileNotFoundError:
        raise InputError(f"cannot read {where}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"cannot read {where}: it is a directory") from None
    except UnicodeDecodeError:
        raise InputError(f"cannot read {where}: not a UTF-8 text file") from None
    except (OSError, csv.Error) as exc:
        raise InputError(f"cannot read {where}: {exc}") from None


def _bounded_lines(f, where):
    """The lines of text file ``f``, each read at most ``MAX_LINE_CHARS`` far."""
    number = 0
    while line := f.readline(MAX_LINE_CHARS + 1):
        number += 1
        if len(line) > MAX_LINE_CHARS:
            raise InputError(
                f"{where}, line {number}: longer than {MAX_LINE_CHARS:,} characters; "
                "is it a CSV file?"
            )
        yield line


def _short(name, limit=40):
    """A column name for a message: at most ``limit`` characters."""
    return name if len(name) <= limit else name[: limit - 3] + "..."


def _column_list(header, limit=10):
    """``a, b, c`` for a message: the first ``limit`` names, each shortened."""
    names = ", ".join(_short(name) for name in header[:limit])
    if len(header) > limit:
        names += f", ... ({len(header):,} columns)"
    return names


def _delimiter_hint(header, target, delimiter):
    """'; is it ...' when ``target`` is in a header cell split by another delimiter."""
    for other in ",;\t|: ":
        if other != delimiter and any(target in cell.split(other) for cell in header):
            flag = "'\\t'" if other == "\t" else repr(other)
            return f"; is the file {other!r}-separated? Use --delimiter {flag}"
    return ""


def _records(reader):
    """(line, row) of each non-blank row, line being where the row starts."""
    end = 0
    for row in reader:
        line, end = end + 1, reader.line_num  # a quoted field can span lines
        if any(c.strip() for c in row):
            yield line, row


def _parse_csv(reader, target, where, delimiter):
    # Row by row straight into a flat float buffer: keeping every cell as a str
    # until the end took ten times the memory of the result, and converting the
    # cells one by one in Python most of the time.
    rows = _records(reader)
    _, header = next(rows, (None, None))
    if header is None:
        raise InputError(f"{where} is empty")
    header = [name.strip() for name in header]
    if target is None:
        raise InputError(
            f"{where} needs --target COLUMN, the class column; columns: {_column_list(header)}"
        )
    if target not in header:
        raise InputError(
            f"{where} has no column {target!r} (--target); columns: {_column_list(header)}"
            + _delimiter_hint(header, target, delimiter)
        )
    if header.count(target) > 1:
        raise InputError(
            f"{where} has {header.count(target)} columns named {target!r} (--target); "
            "rename or drop all but the class column"
        )
    if len(header) < 2:
        raise InputError(f"{where} has no feature column besides the target {target!r}")
    t = header.index(target)
    feature_names = header[:t] + header[t + 1 :]
    values = array("d")
    labels = []
    no_label = None  # line of the first missing class label
    # (feature column, line, cell) of the first unusable cell, column by column
    # as the message always went: it names the leftmost non-numeric column.
    unusable = None
    for line, row in rows:
        if len(row) != len(header):
            raise InputError(
                f"{where}, line {line}: {len(row)} fields where the header has {len(header)} "
                f"(delimiter {delimiter!r}; see --delimiter)"
            )
        label = row.pop(t).strip()
        if not label and no_label is None:
            no_label = line
        labels.append(label)
        if unusable is not None:
            # X is lost anyway; only an earlier column can hold an earlier unusable cell.
            del row[unusable[0] :]
        try:
            x = list(map(float, row))
            # The sum is finite unless some value is inf or nan (or it overflows,
            # which costs a needless look below).
            finite = math.isfinite(sum(x))
        except ValueError:
            finite = False
        if not finite:
            j = _first_unusable(row)
            if j is not None:
                unusable = (j, line, row[j].strip())
                continue
        if unusable is None:
            values.extend(x)
    if not labels:
        raise InputError(f"{where} has a header but no data rows")
    if unusable is not None:
        j, line, cell = unusable
        name = _short(feature_names[j])
        if cell in _MISSING:
            what = "a missing value" if cell == "" else f"missing value {cell!r}"
            raise InputError(
                f"{where}: feature column {name!r} has {what} on line {line}; impute "
                "missing values (e.g. with sklearn.impute.SimpleImputer) or drop those rows"
            )
        raise InputError(
            f"{where}: feature column {name!r} is not numeric ({_short(repr(cell))} on line "
            f"{line}); encode or drop non-numeric columns"
        )
    if no_label is not None:
        raise InputError(
            f"{where}: the target column {target!r} has a missing value on line {no_label}"
        )
    X = np.frombuffer(values, dtype=np.float64).reshape(len(labels), len(feature_names))
    return X, _parse_labels(labels), feature_names


def _continuous_hint(y, classes):
    """'; ...' when the labels look like measurements rather than classes, else ''."""
    if y.dtype.kind in "iu":
        numbers = classes
    else:
        try:
            numbers = np.array([float(c) for c in classes])
        except (TypeError, ValueError):
            return ""
    fractional = not np.all(np.mod(numbers, 1) == 0)
    if fractional or len(classes) > len(y) / 2:
        return (
            f"; the target looks continuous ({len(classes):,} distinct numbers in "
            f"{len(y):,} rows): SoftmaxRegressor is a classifier, --target must name "
            "a column of class labels"
        )
    return ""


def _split(X, y, args, where):
    classes, counts = np.unique(y, return_counts=True)
    if len(classes) < 2:
        raise InputError(
            f"{where} has only one class ({_short(repr(_plain(classes[0])))}); a classifier "
            "needs at least two"
        )
    if counts.min() < 2:
        lonely = _short(repr(_plain(classes[counts.argmin()])))
        raise InputError(
            f"{where}: class {lonely} has a single sample; the stratified split into "
            "training and test sets needs at least two of each class" + _continuous_hint(y, classes)
        )
    try:
        X_train, X_test, y_train, y_test = train_test_split(
            X, y, test_size=args.test_size, stratify=y, random_state=args.random_state
        )
    except ValueError as exc:
        raise InputError(f"{where}: cannot split for testing: {exc}") from None
    # A large --test-size can take every sample of a rare class: the models
    # could then not even name the class their test set holds.
    untrained = np.setdiff1d(classes, y_train)
    if untrained.size:
        c = untrained[0]
        raise InputError(
            f"{where}: --test-size {args.test_size} puts all {counts[classes == c][0]} "
            f"samples of class {_short(repr(_plain(c)))} in the test set; lower --test-size"
            + _continuous_hint(y, classes)
        )
    return X_train, X_test, y_train, y_test


def _check_standardisable(X_train, X_test, feature_names, where):
    """Raise InputError for a column StandardScaler cannot bring to finite values.

    Finite cells near the float64 limit (1e308) overflow its variance, and the
    models would be handed NaN: the error would blame data that has none.
    """
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scaler = StandardScaler().fit(X_train)
        ok = np.isfinite(scaler.mean_) & np.isfinite(scaler.scale_)
        for X in (X_train, X_test):
            ok &= np.isfinite(scaler.transform(X)).all(axis=0)
    if not ok.all():
        j = int(np.flatnonzero(~ok)[0])
        largest = max(np.abs(X_train[:, j]).max(initial=0), np.abs(X_test[:, j]).max(initial=0))
        raise InputError(
            f"{where}: feature column {_short(feature_names[j])!r} has values too large to "
            f"standardise (up to {largest:.3g}); divide the column by a constant"
        )


def _stratified_subset(y, n, random_state):
    """Indices of n samples of y: one of each class, the rest shared in proportion.

    train_test_split(stratify=y) fails when it would leave out fewer samples
    than there are classes, or when a class has a single sample, and it may
    leave a rare class out of the subset altogether.
    """
    _, y_class, counts = np.unique(y, return_inverse=True, return_counts=True)
    spare = counts - 1
    share = (n - len(counts)) * spare  # integers: the rounding must add up exactly
    take = share // spare.sum()
    short = n - len(counts) - take.sum()
    # Largest remainders first; those without one (exact shares) never need it.
    take[np.argsort(-(share % spare.sum()), kind="stable")[:short]] += 1
    rng = check_random_state(random_state)
    chosen = [
        rng.choice(np.flatnonzero(y_class == k), size=m + 1, replace=False)
        for k, m in enumerate(take)
    ]
    return rng.permutation(np.concatenate(chosen))


def load_data(args):
    key = _dataset_key(args.dataset)
    if key is None and not (_looks_like_path(args.dataset) or os.path.exists(args.dataset)):
        raise InputError(
            f"unknown dataset {args.dataset!r}: choose one of {', '.join(DATASETS)}, "
            "or give the path of a CSV file"
        )
    if key is not None and args.target is not None:
        raise InputError(f"--target only applies to CSV files, not to --dataset {key}")
    if key != "fashion-mnist" and (args.idx_folder or args.data_home):
        raise InputError("--idx-folder and --data-home only apply to --dataset fashion-mnist")
    if key == "fashion-mnist":
        from .datasets import load_fashion_mnist

        if args.idx_folder is None:
            print("Loading Fashion-MNIST (downloaded from OpenML on first use, then cached) ...")
        try:
            with warnings.catch_warnings():
                # fetch_openml warns before each retry; the error below says it all.
                warnings.filterwarnings("ignore", message="A network error occurred")
                bunch = load_fashion_mnist(data_home=args.data_home, idx_folder=args.idx_folder)
        except ConnectionError as exc:
            # No network: exit status 1 (main), not a bad argument. The loader's own
            # message is for Python users (idx_folder=...) and too long for one line.
            from .datasets import _GITHUB_URL

            cause = exc.__cause__
            reason = getattr(cause, "reason", None) or cause or exc
            raise ConnectionError(
                f"Could not download Fashion-MNIST from OpenML ({reason}) and found no cached "
                "copy. Pass --idx-folder DIR, a folder with the four original IDX files "
                f"(train-images-idx3-ubyte.gz, ...) from {_GITHUB_URL}, or --data-home DIR, "
                "a copy of the scikit_learn_data folder of a machine that has downloaded it."
            ) from None
        except (OSError, ValueError) as exc:
            # The loader's own messages say what is wrong; a bare OSError, such
            # as --data-home naming a file, gets "cannot load" and no errno.
            if isinstance(exc, OSError) and exc.strerror and exc.filename:
                reason = exc.strerror
                if isinstance(exc, FileExistsError):  # from makedirs(data_home)
                    reason = "it exists and is not a folder"
                raise InputError(
                    f"cannot load Fashion-MNIST: {str(exc.filename)!r}: {reason}"
                ) from None
            if isinstance(exc, OSError):  # a full disk, a broken download, ...
                raise InputError(f"cannot load Fashion-MNIST: {exc.strerror or exc}") from None
            raise InputError(str(exc)) from None
        data = _Data(
            key,
            bunch.X_train,
            bunch.X_test,
            bunch.y_train,
            bunch.y_test,
            list(bunch.target_names),
            np.arange(len(bunch.target_names)),
        )
    elif key is not None:
        bunch = _BUNDLED[key]()
        X_train, X_test, y_train, y_test = _split(bunch.data, bunch.target, args, key)
        names = [str(name) for name in bunch.target_names]
        data = _Data(key, X_train, X_test, y_train, y_test, names, np.arange(len(names)))
    else:
        delimiter = args.delimiter
        if delimiter is None:
            delimiter = "\t" if args.dataset.lower().endswith(".tsv") else ","
        X, y, feature_names = read_csv(args.dataset, args.target, delimiter)
        where = f"the target column {args.target!r} of {args.dataset!r}"
        X_train, X_test, y_train, y_test = _split(X, y, args, where)
        _check_standardisable(X_train, X_test, feature_names, f"CSV file {args.dataset!r}")
        classes = np.unique(y)
        data = _Data(
            Path(args.dataset).name,
            X_train,
            X_test,
            y_train,
            y_test,
            [str(c) for c in classes],
            classes,
        )
    if args.max_samples is not None and args.max_samples < len(data.y_train):
        n_classes = len(np.unique(data.y_train))
        if args.max_samples < 2 * n_classes:
            raise InputError(
                f"--max-samples {args.max_samples} is too small for {n_classes} classes "
                f"(at least {2 * n_classes})"
            )
        keep = _stratified_subset(data.y_train, args.max_samples, args.random_state)
        data.X_train, data.y_train = data.X_train[keep], data.y_train[keep]
    return data


# --------------------------------------------------------------- train, report


_PENALTY_TEXT = {
    "l2": "alpha/2 ||W||^2",
    "l1": "alpha |W|_1",
    "elasticnet": "alpha (l1_ratio |W|_1 + (1 - l1_ratio)/2 ||W||^2)",
    "none": "nothing (no penalty)",
}


def _objective(pipe, data, penalty):
    """Mean training log-loss + the penalty: what both models minimise."""
    proba = pipe.predict_proba(data.X_train)
    coef = np.asarray(pipe[-1].coef_, dtype=np.float64)
    return log_loss(data.y_train, proba, labels=pipe.classes_) + penalty.value(coef)


def _elastic_net_options(l1_ratio):
    """LogisticRegression's elastic net: ``l1_ratio`` alone from scikit-learn 1.8 on
    (``penalty`` is deprecated there), with ``penalty="elasticnet"`` before."""
    import sklearn

    major, minor = (int(part) for part in sklearn.__version__.split(".")[:2])
    if (major, minor) >= (1, 8):
        return {"l1_ratio": l1_ratio}
    return {"penalty": "elasticnet", "l1_ratio": l1_ratio}


def _l1_ratio(args):
    """The L1 share of the penalty the arguments name."""
    return {"l1": 1.0, "elasticnet": args.l1_ratio}.get(args.penalty, 0.0)


def _fit(name, pipe, data, penalty, notes):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        start = time.perf_counter()
        pipe.fit(data.X_train, data.y_train)
        seconds = time.perf_counter() - start
    if any(str(w.message).startswith("Training interrupted by user") for w in caught):
        # Ctrl-C ended SoftmaxRegressor's training softly (it keeps a model); the
        # demo stops, as any command does on Ctrl-C.
        raise KeyboardInterrupt
    for w in caught:
        first_line = str(w.message).splitlines()[0]
        note = f"{name}: {first_line}"
        if note not in notes:
            notes.append(note)
    proba = pipe.predict_proba(data.X_test)
    classes = pipe.classes_
    return {
        "model": name,
        "accuracy": accuracy_score(data.y_test, classes[proba.argmax(axis=1)]),
        "log-loss": log_loss(data.y_test, proba, labels=classes),
        "train obj": _objective(pipe, data, penalty),
        **({"non-zero w": int(np.count_nonzero(pipe[-1].coef_))} if penalty.l1 else {}),
        "fit s": seconds,
        "epochs": int(np.max(pipe[-1].n_iter_)),
    }


def _objective_gap(ours, theirs):
    """One line comparing the two training objectives (the same function)."""
    gap = (ours - theirs) / abs(theirs) if theirs else np.inf
    where = "above" if gap >= 0 else "below"
    return (
        f"SoftmaxRegressor's training objective is {abs(gap):.1e} (relative) {where} "
        "LogisticRegression's."
    )


def format_table(rows):
    """The comparison table; a "non-zero w" column when the rows have one (L1)."""
    nonzero = all("non-zero w" in r for r in rows) and rows
    lines = [
        f"{'model':<20}{'accuracy':>10}{'log-loss':>10}{'train obj':>11}"
        + (f"{'non-zero w':>12}" if nonzero else "")
        + f"{'fit s':>9}{'epochs':>8}"
    ]
    for r in rows:
        lines.append(
            f"{r['model']:<20}{r['accuracy']:>10.4f}{r['log-loss']:>10.4f}{r['train obj']:>11.4f}"
            + (f"{r['non-zero w']:>12d}" if nonzero else "")
            + f"{r['fit s']:>9.3f}{r['epochs']:>8d}"
        )
    return "\n".join(lines)


def save_figure(path, softmax_pipe, data, optimum=None):
    """Loss curve(s) and the test confusion matrix of SoftmaxRegressor."""
    from matplotlib.figure import Figure
    from sklearn.metrics import ConfusionMatrixDisplay

    clf = softmax_pipe[-1]
    n_classes = len(data.class_names)
    fig = Figure(figsize=(11, 4.5), layout="constrained")
    ax_loss, ax_cm = fig.subplots(1, 2, width_ratios=[1, 1.1])
    epochs = np.arange(1, len(clf.loss_curve_) + 1)
    ax_loss.plot(epochs, clf.loss_curve_, label="training objective")
    if clf.validation_scores_ is not None:
        ax_loss.plot(epochs, -np.asarray(clf.validation_scores_), label="validation log-loss")
    if optimum is not None:
        ax_loss.axhline(optimum, color="k", ls="--", lw=1, label="optimum (LogisticRegression)")
    ax_loss.set(
        xlabel="epoch",
        ylabel="log-loss",
        yscale="log",
        title=f"SoftmaxRegressor on {data.name}: training",
    )
    ax_loss.legend()
    labels = data.class_names if n_classes <= 20 else None
    ConfusionMatrixDisplay.from_estimator(
        softmax_pipe,
        data.X_test,
        data.y_test,
        # All classes, so that the rows match display_labels even when the
        # test set lacks a rare class.
        labels=data.classes,
        display_labels=labels,
        ax=ax_cm,
        colorbar=False,
        include_values=n_classes <= 12,
        xticks_rotation="vertical" if n_classes > 4 else "horizontal",
    )
    ax_cm.set_title("test confusion matrix")
    try:
        fig.savefig(path, dpi=90)
    except (OSError, ValueError, RuntimeError) as exc:  # RuntimeError: pgf without LaTeX
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        reason = reason.strip().splitlines()[0] if reason.strip() else type(exc).__name__
        raise InputError(f"cannot write --plot {str(path)!r}: {reason}") from None


def _plot_path(text):
    """The file ``--plot text`` will write, checked before the training it would waste.

    Like matplotlib's savefig, the extension picks the format, and a name
    without one gets the default format's (.png) appended; raises InputError.
    """
    try:
        import matplotlib
        from matplotlib.backend_bases import FigureCanvasBase
    except ImportError:
        raise InputError(
            "--plot needs matplotlib, which is not installed: "
            "pip install matplotlib (or pip install 'sksoftmax[examples]')"
        ) from None
    if not text:
        raise InputError("--plot needs a file name")
    if os.path.isdir(text):
        raise InputError(f"cannot write --plot {text!r}: it is a directory")
    fmt = os.path.splitext(text)[1][1:].lower()
    if not fmt:
        fmt = matplotlib.rcParams["savefig.format"]
        text = f"{text.rstrip('.')}.{fmt}"
    formats = FigureCanvasBase.get_supported_filetypes()
    if fmt not in formats:
        raise InputError(
            f"cannot write --plot {text!r}: matplotlib has no format {fmt!r}; "
            f"use one of {', '.join(sorted(formats))}"
        )
    path = Path(text)
    if path.is_dir():
        raise InputError(f"cannot write --plot {text!r}: it is a directory")
    folder = path.resolve().parent
    if not folder.is_dir():
        raise InputError(f"cannot write --plot {text!r}: no folder {str(folder)!r}")
    return path


def run(args):
    """Load the data, train both models, print the table; return the exit status."""
    figure = _plot_path(args.plot) if args.plot is not None else None
    if args.learning_rate == "optimal" and args.alpha == 0:
        raise InputError("--learning-rate optimal needs --alpha > 0")
    data = load_data(args)
    n_train, n_features = data.X_train.shape
    subset = ""
    if n_train < data.n_train_available:
        subset = f" (--max-samples: {n_train} of the {data.n_train_available} training samples)"
    print(
        f"Dataset {data.name}: {data.n_samples} samples, {n_features} features, "
        f"{len(data.class_names)} classes; training on {n_train}, testing on {len(data.y_test)}"
        f"{subset}."
    )
    softmax = Pipeline(
        [
            ("scale", StandardScaler()),
            (
                "softmax",
                SoftmaxRegressor(
                    penalty=None if args.penalty == "none" else args.penalty,
                    alpha=args.alpha,
                    l1_ratio=args.l1_ratio,
                    eta0=args.eta0,
                    learning_rate=args.learning_rate,
                    batch_size=args.batch_size,
                    max_iter=args.max_iter,
                    tol=args.tol,
                    solver=args.solver,
                    early_stopping=args.early_stopping,
                    random_state=args.random_state,
                    verbose=1 if args.verbose and not args.quiet else 0,
                ),
            ),
        ]
    )
    penalty = Penalty.of(softmax[-1])
    penalised = args.alpha > 0 and args.penalty != "none"
    C = 1.0 / (args.alpha * n_train) if penalised else np.inf
    # lbfgs for L2; saga, the one multinomial solver of an L1 part, otherwise.
    solver = dict(solver="saga", **_elastic_net_options(_l1_ratio(args))) if penalty.l1 else {}
    logreg = Pipeline(
        [("scale", StandardScaler()), ("logreg", LogisticRegression(C=C, max_iter=1000, **solver))]
    )
    notes, rows = [], []
    for name, pipe in [("SoftmaxRegressor", softmax), ("LogisticRegression", logreg)]:
        print(f"\nTraining {name} ...", flush=True)
        try:
            rows.append(_fit(name, pipe, data, penalty, notes))
        except ValueError as exc:  # the data or the settings: e.g. a step that diverges
            raise InputError(f"{name} failed to train: {exc}") from None
    print("\n" + format_table(rows))
    print(_objective_gap(rows[0]["train obj"], rows[1]["train obj"]))
    print(
        "\naccuracy, log-loss: on the test set. train obj: mean training log-loss + "
        f"{_PENALTY_TEXT[args.penalty]},\nthe objective both minimise (LogisticRegression with "
        f"C = 1 / (alpha * n_train) = {C:.4g}).\n"
        + ("non-zero w: weights not exactly zero.\n" if penalty.l1 else "")
        + "epochs: passes over the training data (SoftmaxRegressor), "
        + ("saga epochs" if penalty.l1 else "L-BFGS iterations")
        + " (LogisticRegression)."
    )
    for note in notes:
        print(f"note: {note}")
    if figure is not None:
        save_figure(figure, softmax, data, optimum=rows[1]["train obj"])
        print(f"Figure saved to {figure}")
    return OK


def _one_line(message, limit=MAX_MESSAGE):
    """``message`` on one line of at most ``limit`` characters.

    Line breaks and other control characters (from a file's column names, say)
    are shown as escapes, so that a message is always one line.
    """
    text = "".join(
        c if c == "\t" or unicodedata.category(c) not in ("Cc", "Zl", "Zp") else repr(c)[1:-1]
        for c in message
    )
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _silence_stdout():
    """Point stdout at /dev/null, so that Python's last flush of it cannot fail.

    Python's advice for a closed pipe (the "Note on SIGPIPE" in the signal
    module's documentation). Not when stdout is no file descriptor (captured).
    """
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


def _prog(argv):
    """The command's name in messages: "sksoftmax" when run by the console script."""
    if argv is None and sys.argv and Path(sys.argv[0]).stem == "sksoftmax":
        return "sksoftmax"
    return PROG


def main(argv=None):
    """Run the demo; return the exit status (0, 1, 2, 130 or 141)."""
    prog = _prog(argv)
    parser = build_parser(prog)

    def error(message):
        print(_one_line(f"{prog}: error: {message}"), file=sys.stderr)

    try:
        args = parser.parse_args(argv)
        status = run(args)
        sys.stdout.flush()  # a closed pipe fails here, not in Python's exit
        return status
    except SystemExit as exc:  # --help, --version
        return exc.code if isinstance(exc.code, int) else OK
    except InputError as exc:
        error(exc)
        return BAD_INPUT
    except BrokenPipeError:  # before ConnectionError, its base class
        # The reader went away (| head): stop quietly, as Unix tools do.
        _silence_stdout()
        return BROKEN_PIPE
    except ConnectionError as exc:
        error(exc)
        return FAILED
    except MemoryError:
        error("out of memory; try a smaller file or --max-samples")
        return FAILED
    except OSError as exc:  # e.g. stdout on a full disk; Python's last flush would fail too
        _silence_stdout()
        error(f"cannot write the output: {exc.strerror or exc}")
        return FAILED
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return INTERRUPTED
