"""The decoded-fixtures cache (``conformance/fixture_cache.py``): a run through it sees
exactly the cases a fresh decoding gives; a changed fixture file never meets an old
entry; a damaged entry is ignored, removed and replaced; the cache can be turned off; a
directory that cannot be written is no error."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from conformance import fixture_cache
from conformance import fixtures as fx

L1 = "l1_loss.json"


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    src = fx.default_dir()
    dst = tmp_path / "fixtures"
    dst.mkdir()
    for name in [L1, fx.MANIFEST_FILE, fx.SCHEMA_FILE]:
        shutil.copy(src / name, dst / name)
    return dst


def _entries(directory: Path) -> list[Path]:
    return sorted((directory / fixture_cache.DIRECTORY).glob("*.bin"))


def _same_cases(a: list[fx.FixtureCase], b: list[fx.FixtureCase]) -> None:
    assert [c.test_id for c in a] == [c.test_id for c in b]
    for x, y in zip(a, b):
        assert (x.options, x.tags, x.invalid, x.note) == (y.options, y.tags, y.invalid, y.note)
        assert x.inputs.keys() == y.inputs.keys()
        for k in x.inputs:
            assert x.inputs[k].dtype == y.inputs[k].dtype and x.inputs[k].tobytes() == y.inputs[k].tobytes()
        if x.invalid is None:
            for ex, ey in [(x.expected, y.expected), *((x.vjp[k], y.vjp[k]) for k in x.vjp)]:
                assert ex.text == ey.text and ex.shape == ey.shape
                assert ex.hi.tobytes() == ey.hi.tobytes() and ex.lo.tobytes() == ey.lo.tobytes()
                assert (ex.bounds is None) == (ey.bounds is None)
            assert x.scale.tobytes() == y.scale.tobytes() and x.n_terms == y.n_terms
            assert x.cotangent.tobytes() == y.cotangent.tobytes()


def test_a_cached_load_equals_a_fresh_decoding(copy, monkeypatch):
    fresh = fx.load_file(copy / L1, cache=False)
    assert not _entries(copy)
    first = fx.load_file(copy / L1)  # decodes and writes the entry
    assert len(_entries(copy)) == 1
    second = fx.load_file(copy / L1)  # reads it
    _same_cases(fresh, first)
    _same_cases(fresh, second)
    assert (copy / fixture_cache.DIRECTORY / ".gitignore").read_text().splitlines()[-1] == "*"


def test_the_cache_is_used(copy, monkeypatch):
    fx.load_file(copy / L1)
    calls = []
    monkeypatch.setattr(fx, "decode", lambda doc: calls.append(1))
    fx.load_file(copy / L1)
    assert calls == []


def test_a_changed_file_gets_its_own_entry(copy):
    fx.load_file(copy / L1)
    (old,) = _entries(copy)
    path = copy / L1
    path.write_bytes(path.read_bytes().replace(b'"name":"', b'"name":"x', 1))
    cases = fx.load_file(path)
    assert cases[0].name.startswith("x")
    (new,) = _entries(copy)  # the old file's entry is gone
    assert new != old


@pytest.mark.parametrize("damage", ["flip", "truncate", "garbage"])
def test_a_damaged_entry_is_ignored_and_replaced(copy, damage):
    fresh = fx.load_file(copy / L1, cache=False)
    fx.load_file(copy / L1)
    (entry,) = _entries(copy)
    data = bytearray(entry.read_bytes())
    if damage == "flip":  # one bit near the end: well-formed, but its seal no longer matches
        data[-3] ^= 0x01
    elif damage == "truncate":
        data = data[: len(data) // 2]
    else:
        data = bytearray(b"not a cache entry")
    entry.write_bytes(bytes(data))
    _same_cases(fresh, fx.load_file(copy / L1))
    (again,) = _entries(copy)
    assert again.read_bytes() != bytes(data)  # rewritten from the file itself


def test_the_cache_can_be_turned_off(copy, monkeypatch):
    monkeypatch.setenv(fixture_cache.ENV, "0")
    fx.load_file(copy / L1)
    assert not _entries(copy)


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root may write anywhere")
def test_a_read_only_directory_is_no_error(copy):
    copy.chmod(0o555)
    try:
        assert fx.load_file(copy / L1)
    finally:
        copy.chmod(0o755)


def test_an_unwritable_cache_is_no_error(copy):
    (copy / fixture_cache.DIRECTORY).write_text("a file where the cache directory would be")
    cases = fx.load_file(copy / L1)
    assert cases and not _entries(copy)


def test_arrays_of_a_loaded_case_are_read_only(copy):
    case = next(c for c in fx.load_file(copy / L1) if c.invalid is None)
    for arr in [*case.inputs.values(), case.expected.hi, case.expected.lo, case.scale]:
        with pytest.raises(ValueError):
            arr[...] = np.zeros_like(arr)


def test_a_changed_decoder_never_reads_an_older_entry(copy, monkeypatch):
    fx.load_file(copy / L1)
    calls = []
    real = fx.decode
    monkeypatch.setattr(fx, "decode", lambda doc: calls.append(1) or real(doc))
    monkeypatch.setattr(fixture_cache, "decoder", lambda: "1-another-decoder")
    fx.load_file(copy / L1)
    assert calls == [1]  # decoded again, not read from the other decoder's entry
    (entry,) = _entries(copy)  # and the older entry replaced
    assert entry.name.endswith(".v1-another-decoder.bin")


def test_cases_read_from_an_entry_share_no_mutable_field(copy):
    fx.load_file(copy / L1)  # writes the entry
    cases = fx.load_file(copy / L1)  # reads it: options, tags and given options are kept once per entry
    same_options = [c for c in cases if c.options == cases[0].options]
    assert len(same_options) > 1
    assert len({id(c.options) for c in same_options}) == len(same_options)
    same_options[0].options["weight"] = "changed"
    assert all(c.options.get("weight") != "changed" for c in same_options[1:])
