"""Sphinx configuration: numpydoc API reference and a sphinx-gallery of examples/.

Build offline, warnings as errors (from the repository root)::

    pip install -e ".[docs]"
    python -m sphinx -W -b html docs docs/_build/html

``SKSOFTMAX_EXAMPLES_QUICK=1`` runs the gallery's examples on their small
budget (what ``tests/test_docs.py`` does); ``-D plot_gallery=0`` skips running
them altogether.
"""

import os
import re
import tempfile
from pathlib import Path

import sksoftmax

# The repository, found through the package (an editable install), so that a
# copy of docs/ elsewhere builds too (tests/test_docs.py builds one).
ROOT = Path(sksoftmax.__file__).resolve().parents[1]

project = "sksoftmax"
author = "the sksoftmax developers"
copyright = "the sksoftmax developers, BSD-3-Clause"
version = release = sksoftmax.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

templates_path = ["_templates"]
exclude_patterns = ["_build"]
html_theme = "alabaster"
html_theme_options = {"description": "Multinomial softmax regression by minibatch SGD"}
html_static_path = []

# API reference: one page per object, from the numpydoc docstrings.
# _templates/autosummary/class.rst lists the methods, without the metadata-routing
# setters that scikit-learn generates.
autosummary_generate = True
# The class template lists the methods itself; numpydoc's own member tables
# would list them twice.
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False


def _plain_rst_docstring(app, what, name, obj, options, lines):
    """Mend two habits of the docstrings that reST reads otherwise.

    - A type line continued with a backslash (``{...}, \\`` then
      ``default=...``) is one line to numpydoc only when the docstring is not
      raw; in a raw docstring the backslash stays and the next line becomes a
      block quote. Join them.
    - ``(n_features_in_,)`` reads as a reference to a target ``n_features_in``:
      make the attribute names in shapes literal.
    - The docstrings of methods inherited from scikit-learn (``score``,
      ``get_params``) point into scikit-learn's own user guide and glossary,
      which this offline build cannot reach: keep their text, drop the links.
    """
    if getattr(obj, "__module__", "").startswith("sklearn."):
        lines[:] = [re.sub(r":(?:ref|term):`([^`<]+?)\s*(?:<[^>]*>)?`", r"\1", x) for x in lines]
    joined = []
    for line in lines:
        if joined and joined[-1].endswith("\\"):
            joined[-1] = joined[-1][:-1].rstrip() + " " + line.strip()
        else:
            joined.append(line)
    lines[:] = [
        re.sub(r"\((\w+_),\)", r"(``\1``,)", line) if " : " in line else line for line in joined
    ]


def setup(app):
    # Before numpydoc (priority 500), which parses the sections.
    app.connect("autodoc-process-docstring", _plain_rst_docstring, priority=400)


# Figures of the examples go to a scratch folder, not into the source tree.
os.environ.setdefault(
    "SKSOFTMAX_EXAMPLES_OUTPUT", str(Path(tempfile.gettempdir(), "sksoftmax-docs-figures"))
)
os.environ.setdefault("MPLBACKEND", "Agg")

sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "examples"),
    "gallery_dirs": "auto_examples",
    # Run every example but those that need the network (Fashion-MNIST from
    # OpenML) or start a Dask cluster: their pages show the code only, and
    # their docstrings say so.
    "filename_pattern": r"/plot_(?!fashion_mnist|dask)\w+\.py$",
    "abort_on_example_error": True,
    "download_all_examples": False,
    "within_subsection_order": "FileNameSortKey",
    "matplotlib_animations": False,
    "image_scrapers": ("matplotlib",),
    "reset_modules": ("matplotlib",),
    "show_memory": False,
    "min_reported_time": 1,
}
