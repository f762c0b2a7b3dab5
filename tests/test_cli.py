"""The ``python -m sksoftmax`` demo, called in-process through main(argv)."""

import csv
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_iris

import sksoftmax
from sksoftmax.__main__ import main
from sksoftmax._cli import InputError, _stratified_subset, read_csv

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


def test_verbose_iris_prints_epochs_then_table(capsys):
    assert main(["--verbose"]) == 0
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


def test_demo_prints_no_epoch_lines_and_compares_the_objectives(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    assert "Epoch 1," not in out
    rows = table(out)
    ours, theirs = rows["SoftmaxRegressor"][2], rows["LogisticRegression"][2]
    # The table rounds to 4 digits; the line says how far apart the two are.
    match = re.search(r"training objective is ([0-9.e+-]+) \(relative\) (above|below)", out)
    assert match and float(match[1]) < 1e-2  # next to the optimum (measured: 4.4e-3)
    assert abs(ours - theirs) <= 1e-2 * theirs + 1e-4


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
    assert "Could not download Fashion-MNIST" in err and "--idx-folder DIR" in err


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


def test_plot_without_extension_says_which_file_it_wrote(tmp_path, capsys):
    assert main(["--quiet", "--plot", str(tmp_path / "noext")]) == 0
    assert f"Figure saved to {tmp_path / 'noext.png'}" in capsys.readouterr().out
    assert (tmp_path / "noext.png").read_bytes().startswith(b"\x89PNG")
    assert not (tmp_path / "noext").exists()


@pytest.mark.parametrize(
    "failure, reason",
    [
        # An unwritable place like /proc, portably.
        (FileNotFoundError(2, "No such file or directory"), "No such file or directory"),
        # What the pgf format raises on a machine without LaTeX.
        (RuntimeError("'xelatex' not found.  Install it or change rcParams"), "'xelatex' not"),
    ],
    ids=["unwritable", "pgf-without-latex"],
)
def test_plot_write_failure_is_one_line_exit_2(monkeypatch, tmp_path, capsys, failure, reason):
    from matplotlib.figure import Figure

    def fail(self, fname, **kwargs):
        raise failure

    # Only writing fails, after training.
    monkeypatch.setattr(Figure, "savefig", fail)
    path = tmp_path / "x.png"
    assert main(["--quiet", "--plot", str(path)]) == 2
    captured = capsys.readouterr()
    table(captured.out)
    assert captured.err.startswith(
        f"python -m sksoftmax: error: cannot write --plot {str(path)!r}: {reason}"
    )
    assert captured.err.count("\n") == 1


def write_csv(path, header, rows):
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return str(path)


def write_bytes(path, data):
    path.write_bytes(data)
    return str(path)


def iris_csv(path):
    iris = load_iris()
    rows = [
        [*map(str, x), iris.target_names[t]] for x, t in zip(iris.data, iris.target, strict=True)
    ]
    return write_csv(path, ["sepal_l", "sepal_w", "petal_l", "petal_w", "species"], rows)


def rare_class_csv(path):
    """62 rows: classes 0 and 1 with 30 each, class 2 with 2."""
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], [30, 30, 2])
    X = rng.normal(size=(len(y), 3)) + y[:, None]
    return write_csv(path, ["a", "b", "c", "y"], [[*x, t] for x, t in zip(X, y, strict=True)])


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


def test_plot_when_a_class_is_missing_from_the_test_set(tmp_path, capsys):
    from sklearn.model_selection import train_test_split

    path = rare_class_csv(tmp_path / "rare.csv")
    y = np.repeat([0, 1, 2], [30, 30, 2])
    _, y_test = train_test_split(y, test_size=0.25, stratify=y, random_state=0)
    assert 2 not in y_test  # the case this test is about: both samples of class 2 train
    png = tmp_path / "rare.png"
    assert main(["--dataset", path, "--target", "y", "--quiet", "--plot", str(png)]) == 0
    assert "3 classes; training on 46, testing on 16" in capsys.readouterr().out
    assert png.stat().st_size > 10_000


def test_tsv_and_tab_delimiter(tmp_path, capsys):
    iris = load_iris()
    lines = ["a\tb\tc\td\tspecies"] + [
        "\t".join([*map(str, x), str(t)]) for x, t in zip(iris.data, iris.target, strict=True)
    ]
    text = "\n".join(lines) + "\n"
    (tmp_path / "iris.tsv").write_text(text)
    (tmp_path / "iris.txt").write_text(text)
    # .tsv: tab by default; other names: --delimiter '\t' as typed in a shell.
    assert main(["--dataset", str(tmp_path / "iris.tsv"), "--target", "species", "--quiet"]) == 0
    args = ["--dataset", str(tmp_path / "iris.txt"), "--target", "species", "--quiet"]
    assert main(args + ["--delimiter", "\\t"]) == 0
    out = capsys.readouterr().out
    assert out.count("Dataset iris.tsv: 150 samples, 4 features, 3 classes") == 1
    assert out.count("Dataset iris.txt: 150 samples, 4 features, 3 classes") == 1


@pytest.mark.parametrize("max_samples", [6, 111])
def test_max_samples_prints_the_full_size(capsys, max_samples):
    # 111 of iris's 112 training samples leaves out fewer samples than there are
    # classes, which a stratified train_test_split refuses.
    assert main(["--quiet", "--max-samples", str(max_samples)]) == 0
    out = capsys.readouterr().out
    assert (
        f"Dataset iris: 150 samples, 4 features, 3 classes; training on {max_samples}, "
        f"testing on 38 (--max-samples: {max_samples} of the 112 training samples)." in out
    )
    table(out)


def test_max_samples_keeps_a_class_with_one_training_sample(tmp_path, capsys):
    # --test-size 0.5 leaves one training sample of class 2, too few for train_test_split.
    path = rare_class_csv(tmp_path / "rare.csv")
    args = ["--dataset", path, "--target", "y", "--test-size", "0.5", "--max-samples", "20"]
    assert main(args + ["--quiet"]) == 0
    out = capsys.readouterr().out
    assert "3 classes; training on 20, testing on 31" in out
    table(out)


@pytest.mark.parametrize(
    "counts, n",
    [([30, 30, 1], 20), ([38, 37, 37], 111), ([5, 5], 4), ([100, 3, 50, 7], 40), ([2, 2, 2], 6)],
)
def test_stratified_subset(counts, n):
    y = np.repeat(np.arange(len(counts)), counts)
    np.random.default_rng(0).shuffle(y)
    keep = _stratified_subset(y, n, random_state=0)
    assert len(keep) == n == len(np.unique(keep))
    taken = np.bincount(y[keep], minlength=len(counts))
    # Every class, the rest in proportion to what each has beyond its first sample.
    spare = np.array(counts) - 1
    assert np.all(np.abs(taken - 1 - (n - len(counts)) * spare / spare.sum()) < 1)
    assert np.array_equal(keep, _stratified_subset(y, n, random_state=0))


def test_fashion_mnist_data_home_is_a_file(monkeypatch, tmp_path, capsys):
    fake.serve_no_network(monkeypatch)
    not_a_folder = tmp_path / "notes.txt"
    not_a_folder.write_text("not a folder")
    assert main(["--dataset", "fashion-mnist", "--data-home", str(not_a_folder)]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"python -m sksoftmax: error: cannot load Fashion-MNIST: {str(not_a_folder)!r}: "
        "it exists and is not a folder\n"
    )


def test_fashion_mnist_other_os_errors_say_cannot_load(monkeypatch, capsys):
    import sksoftmax.datasets

    def full_disk(**kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(sksoftmax.datasets, "load_fashion_mnist", full_disk)
    assert main(["--dataset", "fashion-mnist"]) == 2
    assert capsys.readouterr().err == (
        "python -m sksoftmax: error: cannot load Fashion-MNIST: No space left on device\n"
    )


def test_read_csv(tmp_path):
    path = tmp_path / "blank.csv"
    path.write_text("\ufeff\n a , label ,b\n\n 1e3 , 10 ,-2\n0.5,9, 7 \n\n", encoding="utf-8")
    X, y, names = read_csv(path, "label")
    assert names == ["a", "b"]
    assert X.tolist() == [[1000.0, -2.0], [0.5, 7.0]]
    assert y.tolist() == [10, 9] and y.dtype.kind == "i"  # so that 10 sorts after 9
    # Messages give the line in the file, blank lines included.
    path.write_text("a,label\n\n1,u\n\nx,v\n")
    with pytest.raises(InputError, match=r"feature column 'a' is not numeric \('x' on line 5\)"):
        read_csv(path, "label")


def test_read_csv_keeps_distinct_labels_distinct(tmp_path):
    path = write_csv(tmp_path / "l.csv", ["a", "y"], [[1, "1"], [2, "01"], [3, "+1"], [4, "1"]])
    _, y, _ = read_csv(path, "y")
    assert y.tolist() == ["1", "01", "+1", "1"]
    assert len(np.unique(y)) == 3


def test_read_csv_signed_labels_are_ints(tmp_path):
    # libsvm style: +1 / -1 are two classes, and numbers (so -1 sorts first).
    path = write_csv(tmp_path / "s.csv", ["a", "y"], [[1, "+1"], [2, "-1"], [3, "+1"]])
    _, y, _ = read_csv(path, "y")
    assert y.tolist() == [1, -1, 1]


def test_read_csv_reports_the_leftmost_non_numeric_column(tmp_path):
    # The first unusable cell column by column, not row by row.
    path = write_csv(tmp_path / "c.csv", ["a", "b", "y"], [[1, "x", "u"], ["q", 2, "v"]])
    with pytest.raises(InputError, match=r"feature column 'a' is not numeric \('q' on line 3\)"):
        read_csv(path, "y")


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
            "feature column 'a' has a missing value on line 3; impute missing values (e.g. "
            "with sklearn.impute.SimpleImputer) or drop those rows",
        ),
        (
            lambda d: [
                "--dataset",
                write_csv(d / "na.csv", ["a", "y"], [[1, "u"], ["NA", "v"], ["?", "u"]]),
                "--target",
                "y",
            ],
            "feature column 'a' has missing value 'NA' on line 3; impute",
        ),
        (
            lambda d: [
                "--dataset",
                write_csv(
                    d / "dup.csv", ["a", "label", "label"], [[i, i % 2, i % 2] for i in range(8)]
                ),
                "--target",
                "label",
            ],
            "has 2 columns named 'label' (--target); rename or drop all but the class column",
        ),
        (
            lambda d: [
                "--dataset",
                write_csv(
                    d / "huge.csv",
                    ["a", "b", "y"],
                    [[(-1) ** i * 1e308, i, i % 2] for i in range(20)],
                ),
                "--target",
                "y",
            ],
            "feature column 'a' has values too large to standardise (up to 1e+308); divide "
            "the column by a constant",
        ),
        (
            lambda d: [
                "--dataset",
                write_bytes(d / "semi.csv", b"f1;f2;f3;label\n" + b"1;2;3;u\n4;5;6;v\n" * 4),
                "--target",
                "label",
            ],
            "has no column 'label' (--target); columns: f1;f2;f3;label; is the file "
            "';'-separated? Use --delimiter ';'",
        ),
        (
            lambda d: [
                "--dataset",
                write_bytes(d / "tab.csv", b"f1\tlabel\n" + b"1\tu\n4\tv\n" * 4),
                "--target",
                "label",
            ],
            "is the file '\\t'-separated? Use --delimiter '\\t'",
        ),
        (
            lambda d: [
                "--dataset",
                write_csv(d / "cont.csv", ["a", "y"], [[i, f"{np.sin(i):.3f}"] for i in range(30)]),
                "--target",
                "y",
            ],
            "has a single sample; the stratified split into training and test sets needs at "
            "least two of each class; the target looks continuous (30 distinct numbers in 30 "
            "rows): SoftmaxRegressor is a classifier",
        ),
        (
            lambda d: [
                "--dataset",
                write_bytes(d / "nl.csv", b'"a\nb",label\n1,2\n'),
                "--target",
                "y",
            ],
            "has no column 'y' (--target); columns: a\\nb, label",
        ),
        (
            lambda d: [
                "--dataset",
                write_bytes(d / "wide.csv", ",".join(f"f{j}" for j in range(200_000)).encode()),
                "--target",
                "y",
            ],
            "columns: f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, ... (200,000 columns)",
        ),
        (
            lambda d: [
                "--dataset",
                write_bytes(d / "long.csv", b"a," + b"x" * 300 + b"\n1,2\n"),
                "--target",
                "y" * 600,
            ],
            "has no column 'yyyy",
        ),
        (
            lambda d: ["--dataset", "digits", "--eta0", "1e20", "--learning-rate", "constant"],
            "SoftmaxRegressor failed to train: Training diverged",
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
        (
            lambda d: [
                "--dataset",
                write_csv(d / "s.csv", ["a", "y"], [[i, min(i, i % 2 + 2)] for i in range(1, 9)]),
                "--target",
                "y",
            ],
            "class 1 has a single sample; the stratified split into training and test sets "
            "needs at least two of each class",
        ),
        (
            lambda d: [
                "--dataset",
                rare_class_csv(d / "r.csv"),
                "--target",
                "y",
                "--test-size",
                "0.9",
            ],
            "--test-size 0.9 puts all 2 samples of class 2 in the test set; lower --test-size",
        ),
        (
            lambda d: [
                "--dataset",
                write_csv(d / "g.csv", ["a", "b", "y"], [[1, 2, "u"], [3, 4, "v"], [5, "w"]]),
                "--target",
                "y",
            ],
            "line 4: 2 fields where the header has 3 (delimiter ','; see --delimiter)",
        ),
        (
            lambda d: [
                "--dataset",
                write_csv(d / "l.csv", ["a", "y"], [[1, "u"], [2, "v"], [3, ""], [4, "w"]]),
                "--target",
                "y",
            ],
            "the target column 'y' has a missing value on line 4",
        ),
        (
            lambda d: [
                "--dataset",
                write_csv(d / "i.csv", ["a", "y"], [[1, "u"], ["inf", "v"]]),
                "--target",
                "y",
            ],
            "feature column 'a' is not numeric ('inf' on line 3)",
        ),
        (
            lambda d: ["--dataset", write_csv(d / "h.csv", ["a", "y"], []), "--target", "y"],
            "has a header but no data rows",
        ),
        (lambda d: ["--dataset", write_bytes(d / "e.csv", b"\n\n"), "--target", "y"], "is empty"),
        (
            lambda d: [
                "--dataset",
                write_bytes(d / "x.csv", "a,y\n1,\xe9\n".encode("latin-1")),
                "--target",
                "y",
            ],
            "not a UTF-8 text file",
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
        (lambda d: ["--plot", str(d / "out.xyz")], "matplotlib has no format 'xyz'; use one of"),
        (lambda d: ["--plot", str(d)], "it is a directory"),
        (lambda d: ["--plot", ""], "--plot needs a file name"),
        (lambda d: ["--delimiter", ""], "argument --delimiter: expected a single character"),
        (lambda d: ["--delimiter", ",,"], "argument --delimiter: expected a single character"),
        (lambda d: ["--no-such-option"], "unrecognized arguments: --no-such-option"),
    ],
    ids=[
        "missing-file",
        "missing-target-column",
        "no-target",
        "non-numeric-feature",
        "missing-value",
        "missing-value-NA",
        "duplicated-target-column",
        "finite-1e308",
        "semicolon-separated",
        "tab-separated",
        "continuous-target",
        "newline-in-header",
        "wide-header",
        "long-target-name",
        "diverging-step",
        "one-class",
        "single-sample-class",
        "test-size-takes-a-whole-class",
        "ragged-row",
        "missing-label",
        "infinite-value",
        "header-only",
        "empty-file",
        "not-utf8",
        "bad-dataset",
        "negative-alpha",
        "bad-eta0",
        "bad-test-size",
        "optimal-without-alpha",
        "target-without-csv",
        "idx-without-fashion",
        "empty-idx-folder",
        "plot-folder-missing",
        "plot-unknown-format",
        "plot-directory",
        "plot-empty-name",
        "empty-delimiter",
        "two-character-delimiter",
        "unknown-option",
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, make_args, message):
    args = make_args(tmp_path)
    assert main(args) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("python -m sksoftmax: error: ")
    assert captured.err.count("\n") == 1, captured.err  # one line, no traceback
    assert len(captured.err) <= 501, len(captured.err)
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


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"python -m sksoftmax {sksoftmax.__version__}\n"


def test_console_script_calls_itself_sksoftmax():
    script = shutil.which("sksoftmax", path=str(Path(sys.executable).parent))
    if script is None:
        pytest.skip("the sksoftmax console script is not installed next to this Python")
    result = subprocess.run([script, "--bad-option"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr == "sksoftmax: error: unrecognized arguments: --bad-option\n"


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX pipes")
def test_a_closed_pipe_ends_the_demo_quietly():
    """``python -m sksoftmax --dataset digits | head -1``: no message, status 141."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "sksoftmax", "--dataset", "digits"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert proc.stdout.readline().startswith(b"Dataset digits:")
        proc.stdout.close()  # as head does after its line
        stderr = proc.stderr.read()
        proc.wait(timeout=120)
    finally:
        proc.kill()
    assert stderr == b""
    assert proc.returncode == 141  # 128 + SIGPIPE, as a shell reports for `yes | head -1`


@pytest.mark.skipif(sys.platform == "win32", reason="resource limits and sparse files")
def test_a_huge_file_without_newline_is_refused_before_it_is_read(tmp_path):
    """4 GiB of NUL bytes (a sparse file) under a 3 GiB address-space limit."""
    resource = pytest.importorskip("resource")
    path = tmp_path / "nul.csv"
    with open(path, "wb") as f:
        f.truncate(4 * 2**30)
    if os.stat(path).st_blocks > 1024:
        pytest.skip("no sparse files here: the test would write 4 GiB")

    def limit_memory():
        resource.setrlimit(resource.RLIMIT_AS, (3 * 2**30, 3 * 2**30))

    result = subprocess.run(
        [sys.executable, "-m", "sksoftmax", "--dataset", str(path), "--target", "y"],
        preexec_fn=limit_memory,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2, result.stderr[-1000:]
    assert result.stderr.count("\n") == 1
    assert "line 1: longer than 33,554,432 characters; is it a CSV file?" in result.stderr


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT cannot be sent on Windows")
def test_ctrl_c_exits_130():
    # A tiny constant step and tol=0: SoftmaxRegressor would train for minutes.
    args = ["--dataset", "digits", "--learning-rate", "constant", "--eta0", "1e-5", "--tol", "0"]
    args.append("--verbose")  # the epoch lines tell when it trains
    proc = subprocess.Popen(
        [sys.executable, "-m", "sksoftmax", *args, "--max-iter", "1000000"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, SKSOFTMAX_NUMBA="0"),
    )
    watchdog = threading.Timer(300, proc.kill)  # never hang the suite
    watchdog.start()
    try:
        for line in proc.stdout:
            if line.startswith("Epoch 1,"):  # SoftmaxRegressor is training
                proc.send_signal(signal.SIGINT)
                break
        out, err = proc.communicate(timeout=120)
    finally:
        watchdog.cancel()
        proc.kill()
    assert proc.returncode == 130, err
    assert err == "python -m sksoftmax: interrupted\n"
    assert "Training LogisticRegression" not in out and "accuracy" not in out
