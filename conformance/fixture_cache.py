"""The decoded-fixtures cache: each fixture file's numbers, decoded once, kept beside it.

Decoding a fixture file -- parsing its JSON, converting some 35,000 number strings to
float64 with correct rounding and the double-double low parts of float64 exact values --
takes longer than the numpy backend's calls on all its cases. A run therefore keeps what
it decoded in ``<fixtures>/.cache/`` and the next run of the same file reads it back.

What makes this safe:

* An entry is keyed by the SHA-256 of the fixture file's bytes -- the digest the loader
  has just checked against ``MANIFEST.json`` -- and by this cache's format, so a changed
  file or a changed decoder never meets an old entry.
* An entry holds data only: numpy arrays and JSON text, read with
  ``numpy.load(allow_pickle=False)`` and ``json``. It carries the SHA-256 of its own
  contents; an entry that does not match it (a torn write, a changed byte) is ignored,
  removed, and the file is decoded again.
* An entry is written only after the file decoded without error, to a temporary name
  first, then renamed into place. A directory that cannot be written is no error: the run
  goes on without the cache.
* ``LOSSCONF_FIXTURE_CACHE=0`` turns it off; ``lossconf fixtures verify`` never uses it
  (it checks the files themselves).

The directory has its own ``.gitignore`` (``*``), as pytest's cache does, so a checkout
stays clean.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .fixtures import Decoded

#: bump when the layout of an entry or the decoding that produced it changes
FORMAT = "1"
DIRECTORY = ".cache"
ENV = "LOSSCONF_FIXTURE_CACHE"


def enabled() -> bool:
    """Off when ``LOSSCONF_FIXTURE_CACHE`` is ``0`` (or ``off``, ``no``, ``false``)."""
    return os.environ.get(ENV, "1").strip().lower() not in ("0", "off", "no", "false")


def entry_path(fixture: Path, digest: str) -> Path:
    return fixture.parent / DIRECTORY / f"{fixture.stem}.{digest}.v{FORMAT}.npz"


def _seal(fixture_name: str, digest: str, parts: list[bytes]) -> str:
    h = hashlib.sha256(f"{FORMAT}\0{fixture_name}\0{digest}".encode())
    for part in parts:
        h.update(len(part).to_bytes(8, "little"))
        h.update(part)
    return h.hexdigest()


def read(fixture: Path, digest: str) -> Decoded | None:
    """The decoded file for ``fixture`` with SHA-256 ``digest``, or None (no entry, or an
    entry that fails its own digest, which is then removed)."""
    from .fixtures import Decoded

    path = entry_path(fixture, digest)
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            text, numbers, seal = z["text"], z["numbers"], z["seal"]
        parts = [text.tobytes(), numbers.tobytes()]
        if seal.tobytes().decode("ascii") != _seal(fixture.name, digest, parts):
            raise ValueError("the entry's contents do not match its digest")
        meta, _, texts = parts[0].decode("utf-8").partition("\0")
        doc = json.loads(meta)
        text_list = texts.split("\n") if texts else []
        if numbers.dtype != np.float64 or numbers.shape != (2, len(text_list)):
            raise ValueError("inconsistent entry")
        return Decoded(doc["loss"], doc["cases"], text_list, numbers[0], numbers[1])
    except Exception:
        _remove(path)
        return None


def write(fixture: Path, digest: str, decoded: Decoded) -> None:
    """Keep ``decoded`` for the next run (replacing entries of older versions of the same
    file); silently nothing where the directory cannot be written."""
    directory = fixture.parent / DIRECTORY
    try:
        directory.mkdir(exist_ok=True)
        ignore = directory / ".gitignore"
        if not ignore.exists():
            ignore.write_text("# the decoded-fixtures cache of lossconf (conformance/fixture_cache.py)\n*\n")
        meta = json.dumps({"loss": decoded.loss, "cases": decoded.cases}, separators=(",", ":"))
        text = np.frombuffer((meta + "\0" + "\n".join(decoded.texts)).encode("utf-8"), np.uint8)
        numbers = np.stack([decoded.values, decoded.lo]).astype(np.float64)
        seal = _seal(fixture.name, digest, [text.tobytes(), numbers.tobytes()])
        fd, tmp = tempfile.mkstemp(dir=directory, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, text=text, numbers=numbers, seal=np.frombuffer(seal.encode("ascii"), np.uint8))
            os.replace(tmp, entry_path(fixture, digest))
        finally:
            _remove(Path(tmp))
        for old in directory.glob(f"{fixture.stem}.*.npz"):
            if old.name != entry_path(fixture, digest).name and old.name.split(".")[0] == fixture.stem:
                _remove(old)
    except OSError:
        return


def _remove(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass
