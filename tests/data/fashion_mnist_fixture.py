"""A tiny fake Fashion-MNIST, served offline, for the tests.

Two forms, both generated on the fly (nothing binary is committed):

- ``write_idx_folder`` writes the four original IDX files (gzipped), with
  headers packed by :mod:`struct` independently of ``sksoftmax.read_idx``;
- ``serve_fake_openml`` monkeypatches ``sklearn.datasets._openml.urlopen``,
  the way scikit-learn's own ``test_openml.py`` does, so that
  ``fetch_openml("Fashion-MNIST", version=1)`` receives the JSON answers of
  the OpenML API and a small ARFF file, as if from https://www.openml.org.

The images are learnable: class ``k`` lights up the ``k``-th 7x7 tile of a
4x4 grid of tiles (tiles 0-9), plus noise, so that a linear model fits them.
"""

import gzip
import hashlib
import io
import json
import struct
from urllib.error import URLError

import numpy as np

DATA_ID = 40996
FILE_ID = 18238735
N_CLASSES = 10


def fake_images(n_samples, seed=0):
    """Return (images uint8 of shape (n, 28, 28), labels uint8 of shape (n,))."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n_samples) % N_CLASSES
    rng.shuffle(labels)
    images = rng.integers(0, 60, size=(n_samples, 28, 28))
    for i, k in enumerate(labels):
        row, col = divmod(int(k), 4)
        images[i, 7 * row : 7 * row + 7, 7 * col : 7 * col + 7] += 190
    return images.astype(np.uint8), labels.astype(np.uint8)


def write_idx(path, array):
    """Write a uint8 array in the IDX format: magic 0x0000 08 ndim, sizes, data."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wb") as f:
        f.write(header + array.tobytes())


def write_idx_folder(folder, n_train=60, n_test=20, seed=0, gz=True):
    """Write the four Fashion-MNIST IDX files into folder; return the arrays."""
    folder.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if gz else ""
    X_train, y_train = fake_images(n_train, seed)
    X_test, y_test = fake_images(n_test, seed + 1)
    write_idx(folder / f"train-images-idx3-ubyte{suffix}", X_train)
    write_idx(folder / f"train-labels-idx1-ubyte{suffix}", y_train)
    write_idx(folder / f"t10k-images-idx3-ubyte{suffix}", X_test)
    write_idx(folder / f"t10k-labels-idx1-ubyte{suffix}", y_test)
    return X_train, y_train, X_test, y_test


def openml_responses(n_samples=70, seed=0):
    """Map each OpenML URL that fetch_openml requests to its (uncompressed) body.

    The first ``6/7`` of the rows play the training set, as the first 60,000
    of the 70,000 rows do in the real OpenML copy.
    """
    images, labels = fake_images(n_samples, seed)
    pixels = images.reshape(n_samples, -1)
    lines = ["@RELATION Fashion-MNIST", ""]
    lines += [f"@ATTRIBUTE pixel{j} NUMERIC" for j in range(1, 785)]
    lines += ["@ATTRIBUTE class {0,1,2,3,4,5,6,7,8,9}", "", "@DATA"]
    lines += [
        ",".join(map(str, row)) + f",{label}" for row, label in zip(pixels, labels, strict=True)
    ]
    arff = ("\n".join(lines) + "\n").encode()

    def feature(index, name, data_type, is_target, **extra):
        return {
            "index": str(index),
            "name": name,
            "data_type": data_type,
            **extra,
            "is_target": is_target,
            "is_ignore": "false",
            "is_row_identifier": "false",
            "number_of_missing_values": "0",
        }

    features = [feature(j - 1, f"pixel{j}", "numeric", "false") for j in range(1, 785)]
    features.append(
        feature(784, "class", "nominal", "true", nominal_value=[str(k) for k in range(10)])
    )
    description = {
        "id": str(DATA_ID),
        "name": "Fashion-MNIST",
        "version": "1",
        "description": "A tiny fake of Fashion-MNIST for offline tests.",
        "format": "ARFF",
        "upload_date": "2017-10-16T08:00:00",
        "licence": "Public",
        "url": f"https://www.openml.org/data/v1/download/{FILE_ID}/Fashion-MNIST.arff",
        "file_id": str(FILE_ID),
        "default_target_attribute": "class",
        "status": "active",
        "md5_checksum": hashlib.md5(arff).hexdigest(),
    }
    listing = {
        "data": {
            "dataset": [
                {
                    "did": DATA_ID,
                    "name": "Fashion-MNIST",
                    "version": 1,
                    "status": "active",
                    "format": "ARFF",
                    "file_id": FILE_ID,
                }
            ]
        }
    }
    qualities = {
        "data_qualities": {
            "quality": [
                {"name": "NumberOfInstances", "value": f"{n_samples}.0"},
                {"name": "NumberOfFeatures", "value": "785.0"},
                {"name": "NumberOfClasses", "value": "10.0"},
            ]
        }
    }
    api = "https://www.openml.org/api/v1/json/data"
    return {
        f"{api}/list/data_name/fashion-mnist/limit/2/data_version/1": json.dumps(listing),
        f"{api}/{DATA_ID}": json.dumps({"data_set_description": description}),
        f"{api}/features/{DATA_ID}": json.dumps({"data_features": {"feature": features}}),
        f"{api}/qualities/{DATA_ID}": json.dumps(qualities),
        f"https://www.openml.org/data/v1/download/{FILE_ID}/Fashion-MNIST.arff": arff,
    }


class _Response:
    """What urlopen returns, as far as sklearn's OpenML fetcher looks at it."""

    def __init__(self, body, gzipped):
        self._data = io.BytesIO(gzip.compress(body) if gzipped else body)
        self._gzipped = gzipped

    def read(self, amt=-1):
        return self._data.read(amt)

    def info(self):
        return {"Content-Encoding": "gzip"} if self._gzipped else {}

    def close(self):
        self._data.close()

    def __iter__(self):
        return iter(self._data)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        return False


def serve_fake_openml(monkeypatch, n_samples=70, seed=0):
    """Answer OpenML requests from the fake; return the list of URLs requested.

    An unknown URL fails the test rather than reaching the network.
    """
    import sklearn.datasets._openml

    responses = {
        url: body.encode() if isinstance(body, str) else body
        for url, body in openml_responses(n_samples, seed).items()
    }
    requested = []

    def fake_urlopen(request, *args, **kwargs):
        url = request.get_full_url()
        requested.append(url)
        if url not in responses:
            raise AssertionError(f"unexpected OpenML request: {url}")
        gzipped = request.get_header("Accept-encoding") == "gzip"
        return _Response(responses[url], gzipped)

    monkeypatch.setattr(sklearn.datasets._openml, "urlopen", fake_urlopen)
    return requested


def serve_no_network(monkeypatch):
    """Make every OpenML request fail as on a machine without internet."""
    import sklearn.datasets._openml

    requested = []

    def offline_urlopen(request, *args, **kwargs):
        requested.append(request.get_full_url())
        raise URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(sklearn.datasets._openml, "urlopen", offline_urlopen)
    return requested
