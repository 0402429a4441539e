"""Finding backends: by built-in name, by the entry point group ``lossconf.backends``,
or as ``module:attribute`` (imported with the current directory first on the module
search path, as ``python -m`` does, so ``lossconf run mymodule:backend`` finds the
``mymodule.py`` beside you without ``PYTHONPATH=.``)."""

from __future__ import annotations

import importlib
import os
import sys
from importlib.metadata import entry_points
from typing import Any

from ..protocol import Backend

BUILTIN = {
    "numpy": ("conformance.backends.numpy_backend", "backend", "numpy"),
    "mxnet": ("conformance.backends.mxnet_backend", "backend", "mxnet==1.9.1 numpy==1.23.5"),
    "mxnet-np": ("conformance.backends.mxnet_backend", "np_backend", "mxnet==1.9.1 numpy==1.23.5"),
    "chainer": ("conformance.backends.chainer_backend", "backend", "chainer==7.8.1 (build with setuptools<70)"),
    "torch": ("conformance.backends.torch_backend", "backend", "torch==2.13.0"),
    "jax": ("conformance.backends.jax_backend", "backend", "jax==0.10.2 jaxlib==0.10.2 optax==0.2.8"),
}


class BackendError(Exception):
    """A backend that cannot be found, imported or used; the message says what to do."""


def _instantiate(obj: Any, where: str) -> Backend:
    if isinstance(obj, type) or (callable(obj) and not hasattr(obj, "run")):
        obj = obj()
    missing = [a for a in ("name", "version", "supports", "run") if not hasattr(obj, a)]
    if missing:
        raise BackendError(f"{where} is not a lossconf backend: it lacks {', '.join(missing)} (see conformance/protocol.py)")
    return obj


def _current_directory_first() -> None:
    """Put the current directory first on ``sys.path``, as ``python -m`` does (a console
    script such as ``lossconf`` has its own directory there instead)."""
    cwd = os.getcwd()
    if not sys.path or sys.path[0] not in ("", cwd):
        sys.path.insert(0, cwd)


def load_backend(spec: str) -> Backend:
    """A backend by built-in name (numpy, mxnet, chainer), entry point name, or
    ``module:attribute``."""
    if spec in BUILTIN:
        mod, attr, install = BUILTIN[spec]
        try:
            module = importlib.import_module(mod)
        except ModuleNotFoundError as err:
            if err.name and (mod == err.name or mod.startswith(err.name + ".")):
                raise BackendError(f"built-in backend {spec!r}: its module {mod} is missing from this installation") from None
            detail = str(err)
            why = "which is not installed here" if detail.startswith("No module named") else f"which failed to import ({detail})"
            raise BackendError(
                f"backend {spec!r} needs the package {err.name!r}, {why}: "
                f"pip install {install}  (or run it in its tox environment: tox -e {spec})"
            ) from None
        return _instantiate(getattr(module, attr), f"built-in backend {spec!r}")
    for ep in entry_points(group="lossconf.backends"):
        if ep.name == spec:
            try:
                return _instantiate(ep.load(), f"entry point {spec!r}")
            except ModuleNotFoundError as err:
                raise BackendError(f"backend {spec!r} (entry point {ep.value}) failed to import: {err}") from None
    if ":" in spec:
        mod, _, attr = spec.partition(":")
        if not mod or not attr:
            raise BackendError(f"backend {spec!r}: expected module:attribute, e.g. mymodule:backend")
        _current_directory_first()
        try:
            module = importlib.import_module(mod)
        except ModuleNotFoundError as err:
            if err.name and (mod == err.name or mod.startswith(err.name + ".")):
                raise BackendError(
                    f"backend module {mod!r} not found: No module named {err.name!r} in the current directory "
                    f"({os.getcwd()}) or the installed packages"
                ) from None
            raise BackendError(f"backend module {mod!r} failed to import: {type(err).__name__}: {err}") from None
        except Exception as err:
            raise BackendError(f"backend module {mod!r} failed to import: {type(err).__name__}: {err}") from None
        if not hasattr(module, attr):
            raise BackendError(f"backend module {mod!r} has no attribute {attr!r}")
        return _instantiate(getattr(module, attr), spec)
    known = sorted(BUILTIN) + sorted(ep.name for ep in entry_points(group="lossconf.backends"))
    raise BackendError(f"unknown backend {spec!r}; built-in and installed backends: {', '.join(known)}; or give module:attribute")
