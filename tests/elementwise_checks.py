"""Checks the tests of the elementwise Gluon losses share (L1Loss, HuberLoss, HingeLoss,
SquaredHingeLoss): a float64 transcription of the documented formula over the loss's own
cases, and that every case marked invalid raises."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

import numpy as np
import pytest

import oracle


def assert_float64_transcription(module: ModuleType, term: Callable[[np.ndarray, np.ndarray, dict], np.ndarray]) -> None:
    """On every valid float64 case of ``module`` but the extreme ones, the oracle's value
    rounded to float64 is the documented formula evaluated in float64: ``term(pred, label,
    options)`` elementwise (label read into pred's shape), times sample_weight and weight,
    averaged over every axis but batch_axis."""
    for case in module.cases():
        if case.dtype != "float64" or case.invalid or "extreme" in case.tags:
            continue
        opts = module.SPEC.resolve_options(case.options)
        pred = np.asarray(case.inputs["pred"], dtype=np.float64)
        label = np.asarray(case.inputs["label"], dtype=np.float64).reshape(pred.shape)
        loss = term(pred, label, opts)
        if "sample_weight" in case.inputs:
            loss = loss * case.inputs["sample_weight"]
        if opts["weight"] is not None:
            loss = loss * opts["weight"]
        ax = opts["batch_axis"] % pred.ndim
        want = loss.mean(axis=tuple(a for a in range(pred.ndim) if a != ax))
        got = oracle.evaluate(module.SPEC.id, case.inputs, case.options).value_as("float64")
        np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-300, err_msg=case.name)


def assert_invalid_cases_raise(module: ModuleType) -> None:
    for case in module.cases():
        if case.invalid:
            with pytest.raises(oracle.OracleError):
                oracle.evaluate(module.SPEC.id, case.inputs, case.options)
