"""The ``python -m sksoftmax`` demo, called in-process through main(argv)."""

import csv
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_iris

from sksoftmax.__main__ import main

sys.path.insert(0, str(Path(__file__).parent / "data"))
import fashion_mnist_fixture as fake  # noqa: E402

ROW = re.compile(
    r"^(SoftmaxRegressor|LogisticRegression)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+(\d+)$",
    re.MULTILINE,
)


def table(out):
    """{model: (accuracy, log-loss, train objective, epochs)} parsed from the output."""
    rows = {m[1]: (float(m[2]), float(m[3]), float(m[4]), int(m[6])) for m in ROW.finditer(out)}
    assert set(rows) == {"SoftmaxRegressor", "LogisticRegression"}, out
    return rows


def test_default_iris_prints_epochs_then_table(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    assert "Dataset iris: 150 samples, 4 features, 3 classes; training on 112, testing on 38" in out
    epoch_lines = re.findall(r"^Epoch (\d+), loss: ", out, re.MULTILINE)
    rows = table(out)
    # One progress line per epoch, all printed before the table.
    assert [int(e) for e in epoch_lines] == list(range(1, rows["SoftmaxRegressor"][3] + 1))
    assert out.rindex("Epoch ") < out.index("accuracy  log-loss")
    for accuracy, loss, _, _ in rows.values():
        assert accuracy > 0.9 and loss < 0.5
    # L-BFGS reaches at least as low an objective as SGD (they share it).
    assert rows["LogisticRegression"][2] <= rows["SoftmaxRegressor"][2] + 1e-4


@pytest.mark.parametrize(
    "dataset, n_samples, n_features, n_classes",
    [("digits", 1797, 64, 10), ("wine", 178, 13, 3), ("breast_cancer", 569, 30, 2)],
)
def test_bundled_datasets(capsys, dataset, n_samples, n_features, n_classes):
    assert main(["--dataset", dataset, "--quiet"]) == 0
    out = capsys.readouterr().out
    assert (
        f"Dataset {dataset}: {n_samples} samples, {n_features} features, {n_classes} classes" in out
    )
    assert "Epoch 1," not in out  # --quiet
    for accuracy, *_ in table(out).values():
        assert accuracy > 0.85


def test_fashion_mnist_from_fake_openml(monkeypatch, tmp_path, capsys):
    requested = fake.serve_fake_openml(monkeypatch)
    assert main(["--dataset", "fashion-mnist", "--data-home", str(tmp_path), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert any("data_name/fashion-mnist" in url for url in requested)
    assert "Dataset fashion-mnist: 70 samples, 784 features, 10 classes" in out
    assert "training on 60, testing on 10" in out
    table(out)


def test_fashion_mnist_from_idx_folder(monkeypatch, tmp_path, capsys):
    requested = fake.serve_no_network(monkeypatch)
    fake.write_idx_folder(tmp_path, n_train=100, n_test=30)
    args = ["--dataset", "fashion-mnist", "--idx-folder", str(tmp_path), "--quiet"]
    assert main(args + ["--max-samples", "50"]) == 0
    out = capsys.readouterr().out
    assert requested == []
    assert "training on 50, testing on 30" in out
    table(out)


def test_fashion_mnist_offline_is_one_line_exit_1(monkeypatch, tmp_path, capsys):
    import sklearn.datasets._openml

    fake.serve_no_network(monkeypatch)
    monkeypatch.setattr(sklearn.datasets._openml.time, "sleep", lambda seconds: None)
    assert main(["--dataset", "fashion-mnist", "--data-home", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "Could not download Fashion-MNIST" in err and "idx_folder" in err


def test_plot_writes_png(tmp_path, capsys):
    path = tmp_path / "iris.png"
    assert main(["--quiet", "--plot", str(path)]) == 0
    assert f"Figure saved to {path}" in capsys.readouterr().out
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 10_000


def test_plot_without_matplotlib(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib fails
    assert main(["--plot", str(tmp_path / "x.png")]) == 2
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and "--plot needs matplotlib" in captured.err
    assert captured.out == ""  # failed before training
    assert not (tmp_path / "x.png").exists()


def write_csv(path, header, rows):
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return str(path)


def iris_csv(path):
    iris = load_iris()
    rows = [
        [*map(str, x), iris.target_names[t]] for x, t in zip(iris.data, iris.target, strict=True)
    ]
    return write_csv(path, ["sepal_l", "sepal_w", "petal_l", "petal_w", "species"], rows)


def test_csv_with_target(tmp_path, capsys):
    path = iris_csv(tmp_path / "flowers.csv")
    assert main(["--dataset", path, "--target", "species", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "Dataset flowers.csv: 150 samples, 4 features, 3 classes" in out
    for accuracy, *_ in table(out).values():
        assert accuracy > 0.9


def test_csv_target_in_first_column_and_plot(tmp_path, capsys):
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 20)
    X = rng.normal(size=(40, 3)) + y[:, None]
    path = write_csv(
        tmp_path / "t.csv", ["label", "a", "b", "c"], [[t, *x] for t, x in zip(y, X, strict=True)]
    )
    png = tmp_path / "t.png"
    assert main(["--dataset", path, "--target", "label", "--quiet", "--plot", str(png)]) == 0
    assert "3 features, 2 classes" in capsys.readouterr().out
    assert png.stat().st_size > 10_000


@pytest.mark.parametrize(
    "make_args, message",
    [
        (lambda d: ["--dataset", str(d / "missing.csv"), "--target", "y"], "no such file"),
        (
            lambda d: ["--dataset", iris_csv(d / "i.csv"), "--target", "kind"],
            "has no column 'kind' (--target); columns: sepal_l, sepal_w",
        ),
        (lambda d: ["--dataset", iris_csv(d / "i.csv")], "needs --target COLUMN"),
        (
            lambda d: [
                "--dataset",
                write_csv(d / "n.csv", ["a", "b", "y"], [[1, 2, "u"], [3, "high", "v"]] * 4),
                "--target",
                "y",
            ],
            "feature column 'b' is not numeric ('high' on line 3)",
        ),
        (
            lambda d: [
                "--dataset",
                write_csv(d / "m.csv", ["a", "y"], [[1, "u"], ["", "v"]] * 4),
                "--target",
                "y",
            ],
            "feature column 'a' is not numeric (a missing value on line 3)",
        ),
        (
            lambda d: [
                "--dataset",
                write_csv(d / "one.csv", ["a", "b", "y"], [[i, i + 1, "same"] for i in range(9)]),
                "--target",
                "y",
            ],
            "has only one class ('same'); a classifier needs at least two",
        ),
        (lambda d: ["--dataset", "mnist"], "unknown dataset 'mnist': choose one of iris,"),
        (lambda d: ["--alpha", "-1"], "argument --alpha: expected a number in [0, inf)"),
        (lambda d: ["--eta0", "fast"], "argument --eta0: expected a number, got 'fast'"),
        (lambda d: ["--test-size", "1.5"], "argument --test-size"),
        (lambda d: ["--learning-rate", "optimal", "--alpha", "0"], "needs --alpha > 0"),
        (lambda d: ["--target", "species"], "--target only applies to CSV files"),
        (lambda d: ["--idx-folder", str(d)], "only apply to --dataset fashion-mnist"),
        (
            lambda d: ["--dataset", "fashion-mnist", "--idx-folder", str(d)],
            "has no train-images-idx3-ubyte.gz",
        ),
        (lambda d: ["--plot", str(d / "no" / "such" / "dir.png")], "cannot write --plot"),
        (lambda d: ["--no-such-option"], "unrecognized arguments: --no-such-option"),
    ],
    ids=[
        "missing-file",
        "missing-target-column",
        "no-target",
        "non-numeric-feature",
        "missing-value",
        "one-class",
        "bad-dataset",
        "negative-alpha",
        "bad-eta0",
        "bad-test-size",
        "optimal-without-alpha",
        "target-without-csv",
        "idx-without-fashion",
        "empty-idx-folder",
        "plot-folder-missing",
        "unknown-option",
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, make_args, message):
    args = make_args(tmp_path)
    assert main(args) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("python -m sksoftmax: error: ")
    assert captured.err.count("\n") == 1, captured.err  # one line, no traceback
    assert message in captured.err
    assert "Epoch" not in captured.out and "accuracy" not in captured.out


def test_help_in_process(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for word in ("--dataset", "fashion-mnist", "breast_cancer", "--target", "--plot", "exit"):
        assert word in out


def test_help_subprocess():
    result = subprocess.run(
        [sys.executable, "-m", "sksoftmax", "--help"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: python -m sksoftmax")
    assert "LogisticRegression" in result.stdout
