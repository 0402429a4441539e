"""lossconf conformance harness: backends, comparison, pytest plugin, reports."""

import ml_dtypes  # noqa: F401  (registers numpy's "bfloat16" dtype name, a fixture dtype)
