"""Dataset loaders for the sksoftmax examples and demo.

Only :func:`load_fashion_mnist` lives here: the other datasets the demo uses
(iris, digits, wine, breast cancer) ship with scikit-learn.
"""

import gzip
import http.client
import os
import zlib
from pathlib import Path
from urllib.error import URLError

import numpy as np
from sklearn.datasets import fetch_openml, get_data_home
from sklearn.utils import Bunch

__all__ = ["load_fashion_mnist", "read_idx"]

FASHION_MNIST_NAME = "Fashion-MNIST"
FASHION_MNIST_VERSION = 1
FASHION_MNIST_DATA_ID = 40996
FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
FASHION_MNIST_IDX_FILES = {
    "X_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "X_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
_IMAGE_SHAPE = (28, 28)
_N_PIXELS = _IMAGE_SHAPE[0] * _IMAGE_SHAPE[1]
_GITHUB_URL = "https://github.com/zalandoresearch/fashion-mnist"
_OPENML_URL = f"https://www.openml.org/d/{FASHION_MNIST_DATA_ID}"

# IDX type codes (third byte of the magic number) and their big-endian dtypes.
_IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

# Errors that mean "the network could not be used", as opposed to bad data.
_NETWORK_ERRORS = (URLError, TimeoutError, ConnectionError, http.client.HTTPException)

_DESCR = f"""\
Fashion-MNIST
=============

Zalando's article images: 70,000 grayscale 28x28 pictures of clothing in ten
classes, split into 60,000 training and 10,000 test images. It was designed as
a drop-in replacement for MNIST that linear models do not solve as easily.

Classes: {", ".join(f"{i} {name}" for i, name in enumerate(FASHION_MNIST_CLASSES))}.

Pixels are scaled to [0, 1] (float32); each row is one image flattened in row
order, so ``X[i].reshape(28, 28)`` recovers it.

Source: Han Xiao, Kashif Rasul and Roland Vollgraf, "Fashion-MNIST: a Novel
Image Dataset for Benchmarking Machine Learning Algorithms", arXiv:1708.07747,
2017. {_GITHUB_URL} (MIT licence); OpenML copy: {_OPENML_URL}.
"""


def read_idx(path):
    """Read one file in the IDX format of (Fashion-)MNIST.

    The format is a 4-byte magic number (two zero bytes, a type code, the
    number of dimensions), one big-endian 4-byte size per dimension, then the
    values in row-major order, big-endian. Files ending in ``.gz`` are
    decompressed.

    Parameters
    ----------
    path : str or path-like
        The IDX file, gzipped or not.

    Returns
    -------
    array : ndarray of shape given by the file
        The values, in native byte order.

    Raises
    ------
    ValueError
        If the file is not a well-formed IDX file.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        # A partial download, or not gzip at all, in a ".gz" file.
        raise ValueError(f"{path} is not a complete gzip file ({exc}).") from exc
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"{path} is not an IDX file: bad magic number {raw[:4].hex()!r}")
    type_code, ndim = raw[2], raw[3]
    if type_code not in _IDX_DTYPES:
        raise ValueError(f"{path} is not an IDX file: unknown type code 0x{type_code:02x}")
    header_end = 4 + 4 * ndim
    if len(raw) < header_end:
        raise ValueError(f"{path} is truncated: the header announces {ndim} dimensions")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = _IDX_DTYPES[type_code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) - header_end != expected:
        raise ValueError(
            f"{path} holds {len(raw) - header_end} bytes of data; its header "
            f"(shape {shape}, {dtype.name}) announces {expected}"
        )
    data = np.frombuffer(raw, dtype=dtype, offset=header_end).reshape(shape)
    return data.astype(dtype.newbyteorder("="))


def _find_idx_file(folder, stem):
    for name in (stem + ".gz", stem):
        if (folder / name).is_file():
            return folder / name
    # The files are also distributed with a dot before "idx" (train-images.idx3-ubyte).
    for name in (stem.replace("-idx", ".idx") + ".gz", stem.replace("-idx", ".idx")):
        if (folder / name).is_file():
            return folder / name
    raise FileNotFoundError(
        f"{folder} has no {stem}.gz: idx_folder must hold the four original "
        f"Fashion-MNIST files ({', '.join(f + '.gz' for f in FASHION_MNIST_IDX_FILES.values())}) "
        f"from {_GITHUB_URL}"
    )


def _load_idx_folder(folder):
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"idx_folder {str(folder)!r} is not a directory")
    arrays = {
        key: read_idx(_find_idx_file(folder, stem)) for key, stem in FASHION_MNIST_IDX_FILES.items()
    }
    for part in ("train", "test"):
        X, y = arrays[f"X_{part}"], arrays[f"y_{part}"]
        if X.ndim != 3 or X.shape[1:] != _IMAGE_SHAPE or X.dtype != np.uint8:
            raise ValueError(
                f"the {part} images in {folder} have shape {X.shape} and dtype {X.dtype}; "
                "expected (n, 28, 28) uint8"
            )
        if y.ndim != 1 or y.shape[0] != X.shape[0]:
            raise ValueError(
                f"the {part} labels in {folder} have shape {y.shape}, for {X.shape[0]} images"
            )
        arrays[f"X_{part}"] = X.reshape(X.shape[0], -1)
    return arrays


def _load_openml(data_home, n_retries, delay):
    data_home = get_data_home(data_home)
    try:
        bunch = fetch_openml(
            FASHION_MNIST_NAME,
            version=FASHION_MNIST_VERSION,
            data_home=data_home,
            as_frame=False,
            parser="pandas",
            # Read the labels (last column) as text: with pandas >= 3.1 the
            # "category" dtype that fetch_openml asks for parses "0".."9" as
            # integers, which its quote stripping then fails on (TypeError).
            # scikit-learn#34892, fixed upstream by scikit-learn#34902.
            read_csv_kwargs={"dtype": {_N_PIXELS: str}},
            n_retries=n_retries,
            delay=delay,
        )
    except _NETWORK_ERRORS as exc:
        reason = getattr(exc, "reason", None) or exc
        raise ConnectionError(
            f"Could not download Fashion-MNIST from OpenML ({_OPENML_URL}): {reason}. "
            f"No cached copy was found under {os.path.join(data_home, 'openml')}. "
            "Either run load_fashion_mnist() once on a machine with internet access "
            f"and copy the folder {data_home} here (pass data_home=..., --data-home "
            "on the command line, or set SCIKIT_LEARN_DATA to where you put it), or "
            "download the four original IDX files (train-images-idx3-ubyte.gz, ...) "
            f"from {_GITHUB_URL} and pass idx_folder=<the folder holding them> "
            "(--idx-folder on the command line)."
        ) from exc
    data_id = int(bunch.details["id"])
    if data_id != FASHION_MNIST_DATA_ID:
        raise ValueError(
            f"OpenML returned data_id={data_id} for {FASHION_MNIST_NAME} version "
            f"{FASHION_MNIST_VERSION}; expected {FASHION_MNIST_DATA_ID}"
        )
    X = np.asarray(bunch.data)
    y = np.char.strip(np.asarray(bunch.target).astype(str), "'\"")
    if X.shape[1] != _N_PIXELS:
        raise ValueError(f"OpenML's Fashion-MNIST has {X.shape[1]} columns; expected 784")
    # The OpenML copy stacks the original 60,000 training images on the 10,000
    # test images; a copy of another size (a test fixture) is cut at 6/7 too.
    n_train = X.shape[0] * 6 // 7
    return {
        "X_train": X[:n_train],
        "y_train": y[:n_train],
        "X_test": X[n_train:],
        "y_test": y[n_train:],
    }


def load_fashion_mnist(
    data_home=None, *, idx_folder=None, return_X_y=False, n_retries=3, delay=1.0
):
    """Load Fashion-MNIST with its canonical 60,000 / 10,000 train/test split.

    By default the data come from OpenML (dataset "Fashion-MNIST", version 1,
    data_id 40996) through :func:`sklearn.datasets.fetch_openml`, which caches
    the download under ``data_home``: only the first call needs the network.
    Alternatively ``idx_folder`` points at a folder holding the four original
    IDX files of https://github.com/zalandoresearch/fashion-mnist
    (``train-images-idx3-ubyte.gz``, ``train-labels-idx1-ubyte.gz``,
    ``t10k-images-idx3-ubyte.gz``, ``t10k-labels-idx1-ubyte.gz``); then no
    network is used.

    Parameters
    ----------
    data_home : str or path-like, default=None
        Cache folder for the OpenML download; by default scikit-learn's
        (``~/scikit_learn_data`` or ``$SCIKIT_LEARN_DATA``).
    idx_folder : str or path-like, default=None
        Folder with the original IDX files (gzipped or not). When given,
        OpenML is not contacted and ``data_home`` is ignored.
    return_X_y : bool, default=False
        Return ``(X_train, X_test, y_train, y_test)`` instead of a Bunch.
    n_retries : int, default=3
        Retries on network errors, passed to ``fetch_openml``.
    delay : float, default=1.0
        Seconds between retries, passed to ``fetch_openml``.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        With the fields:

        X_train : ndarray of shape (60000, 784), dtype float32
            Training images, flattened row by row, pixels scaled to [0, 1].
        X_test : ndarray of shape (10000, 784), dtype float32
            Test images.
        y_train : ndarray of shape (60000,), dtype int64
            Training labels, 0 to 9.
        y_test : ndarray of shape (10000,), dtype int64
            Test labels.
        target_names : ndarray of shape (10,), dtype object
            Class names, ``target_names[y]`` names a label.
        feature_names : list of str
            ``"pixel1"`` to ``"pixel784"``, OpenML's column names.
        image_shape : tuple of int
            ``(28, 28)``.
        source : str
            ``"openml"`` or ``"idx"``.
        DESCR : str
            Description of the dataset.

    (X_train, X_test, y_train, y_test) : tuple of ndarray
        When ``return_X_y=True``.

    Raises
    ------
    ConnectionError
        When OpenML cannot be reached and nothing is cached; the message says
        how to get the data onto the machine.
    FileNotFoundError
        When ``idx_folder`` is not a folder holding the four IDX files.

    Examples
    --------
    >>> from sksoftmax.datasets import load_fashion_mnist
    >>> data = load_fashion_mnist()  # doctest: +SKIP
    >>> data.X_train.shape, data.X_test.shape  # doctest: +SKIP
    ((60000, 784), (10000, 784))
    >>> data.target_names[data.y_train[0]]  # doctest: +SKIP
    'Ankle boot'
    """
    if idx_folder is not None:
        arrays = _load_idx_folder(idx_folder)
        source = "idx"
    else:
        arrays = _load_openml(data_home, n_retries, delay)
        source = "openml"
    for part in ("train", "test"):
        X = np.asarray(arrays[f"X_{part}"], dtype=np.float32)
        X /= np.float32(255.0)
        arrays[f"X_{part}"] = X
        y = np.asarray(arrays[f"y_{part}"]).astype(np.int64)
        if y.size and (y.min() < 0 or y.max() >= len(FASHION_MNIST_CLASSES)):
            raise ValueError(f"{part} labels outside 0..9: {np.unique(y)}")
        arrays[f"y_{part}"] = y
    if return_X_y:
        return arrays["X_train"], arrays["X_test"], arrays["y_train"], arrays["y_test"]
    return Bunch(
        **arrays,
        target_names=np.array(FASHION_MNIST_CLASSES, dtype=object),
        feature_names=[f"pixel{i}" for i in range(1, _N_PIXELS + 1)],
        image_shape=_IMAGE_SHAPE,
        source=source,
        DESCR=_DESCR,
    )
