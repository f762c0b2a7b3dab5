"""Fitted state made of plain types, for pickle and skops alike.

A fitted SoftmaxRegressor keeps private helper objects (the optimiser, the
curvature estimate behind ``eta0="auto"``) so that ``partial_fit`` and warm
starts continue exactly. skops (``skops.io``) refuses to load objects of types
it does not know until the user trusts them, and a user cannot judge private
classes. So ``SoftmaxRegressor.__getstate__`` hands out each instance of a
registered helper class as a plain dict::

    {"__sksoftmax_state__": "SGDOptimizer", "t": 1280, "velocities": [...], ...}

with its ``__dict__`` converted the same way, recursively (lists, tuples and
dicts are walked; arrays, scalars, strings, None and numpy random states pass
through). ``__setstate__`` rebuilds the objects, by name, from the registry
below only: no other class can be named in a file. Objects that are not
registered pass through untouched, which keeps pickles of older versions
(helper objects in ``__dict__``) loading.

A new helper class kept in the fitted state is registered with the
:func:`persistent` decorator (or by listing it in ``_DEFAULT_CLASSES``); its
attributes must themselves be plain or registered. ``tests/test_persistence.py``
checks, for many kinds of fitted model, that skops finds no type to trust but
SoftmaxRegressor.
"""

STATE_KEY = "__sksoftmax_state__"

# Classes whose instances are saved as dicts, by class name.
_REGISTRY = {}

# Helper classes of modules that do not import this one (registered lazily,
# so that those modules may import the decorator without an import cycle).
_DEFAULT_CLASSES = {"sksoftmax._optim": ("SGDOptimizer", "Curvature")}
_defaults_registered = False


def persistent(state_class):
    """Register ``state_class``: save its instances as plain dicts (see the module docstring).

    Used as a class decorator.

    Parameters
    ----------
    state_class : type
        A class whose state is its instance ``__dict__`` (no ``__slots__``,
        no ``__getstate__`` of its own); names must be unique in the registry.

    Returns
    -------
    state_class : type
        The class itself.
    """
    name = state_class.__name__
    known = _REGISTRY.get(name)
    if known is not None and known is not state_class:
        raise ValueError(f"Another class named {name!r} is already registered.")
    _REGISTRY[name] = state_class
    return state_class


def _registry():
    global _defaults_registered
    if not _defaults_registered:
        import importlib

        for module_name, names in _DEFAULT_CLASSES.items():
            module = importlib.import_module(module_name)
            for name in names:
                # A class renamed or removed is not registered: saving it then
                # fails the tests (its objects stay objects), not every pickle.
                cls = getattr(module, name, None)
                if cls is not None:
                    persistent(cls)
        _defaults_registered = True
    return _REGISTRY


def to_plain(value):
    """``value`` with every registered object replaced by its dict, recursively.

    Parameters
    ----------
    value : object
        Typically an estimator's ``__dict__``. Not modified.

    Returns
    -------
    plain : object
        New containers where something was converted; arrays are shared.
    """
    registry = _registry()
    cls = type(value)
    if registry.get(cls.__name__) is cls:
        state = {key: to_plain(item) for key, item in vars(value).items()}
        return {STATE_KEY: cls.__name__, **state}
    if cls is dict:
        return {key: to_plain(item) for key, item in value.items()}
    if cls in (list, tuple):
        return cls(to_plain(item) for item in value)
    return value


def from_plain(value):
    """Inverse of :func:`to_plain`: rebuild the registered objects, recursively.

    Parameters
    ----------
    value : object
        What :func:`to_plain` returned, or a state holding the objects
        themselves (a pickle of an earlier version): those pass through.

    Returns
    -------
    restored : object
        New containers and objects; arrays are shared.

    Raises
    ------
    ValueError
        If a dict names a class that is not registered.
    """
    cls = type(value)
    if cls is dict and STATE_KEY in value:
        name = value[STATE_KEY]
        registered = _registry().get(name)
        if registered is None:
            raise ValueError(
                f"The saved model holds state of an unknown class {name!r}; it was "
                "probably saved by a newer version of sksoftmax."
            )
        obj = registered.__new__(registered)
        obj.__dict__.update(
            {key: from_plain(item) for key, item in value.items() if key != STATE_KEY}
        )
        return obj
    if cls is dict:
        return {key: from_plain(item) for key, item in value.items()}
    if cls in (list, tuple):
        return cls(from_plain(item) for item in value)
    return value
