"""lossconf's reference oracle: every documented loss evaluated exactly with mpmath.

    >>> import oracle
    >>> r = oracle.evaluate("SoftmaxCELoss", {"pred": [[1.0, 2.0, 3.0]], "label": [2]})
    >>> r.value_as("float32"), r.grads["pred"].value

The catalog (:mod:`oracle.catalog`) lists every loss with its documented options and
inputs; :mod:`oracle.precision` holds the working precision and the rounding to dtypes.
"""

from __future__ import annotations

from .api import evaluate
from .catalog import all_specs, loss_ids, resolve, spec
from .errors import InputError, OptionError, OracleError, UnknownLossError
from .result import Evaluation, Gradient

__version__ = "0.1.0"

__all__ = [
    "evaluate",
    "all_specs",
    "loss_ids",
    "resolve",
    "spec",
    "Evaluation",
    "Gradient",
    "OracleError",
    "InputError",
    "OptionError",
    "UnknownLossError",
    "__version__",
]
