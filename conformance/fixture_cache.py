"""The decoded-fixtures cache: each fixture file's numbers, decoded once, kept beside it.

Decoding a fixture file -- parsing its JSON, converting some 35,000 number strings to
float64 with correct rounding and the double-double low parts of float64 exact values --
takes longer than the numpy backend's calls on all its cases. A run therefore keeps what
it decoded in ``<fixtures>/.cache/`` and the next run of the same file reads it back.

What makes this safe:

* An entry is keyed by the SHA-256 of the fixture file's bytes -- the digest the loader
  has just checked against ``MANIFEST.json`` -- and by this cache's format and a digest of
  the decoder's source, so a changed file or a changed decoder never meets an old entry.
* An entry holds data only: a JSON header, JSON text, raw little-endian float64s and
  int32s, read with ``json`` and ``numpy.frombuffer``. Its header carries a CRC-32 of
  its key and contents; an entry that does not match it (a torn write, a changed byte)
  is ignored, removed, and the file is decoded again.
* An entry is written only after the file decoded without error, to a temporary name
  first, then renamed into place. A directory that cannot be written is no error: the run
  goes on without the cache.
* ``LOSSCONF_FIXTURE_CACHE=0`` turns it off; ``lossconf fixtures verify`` never uses it
  (it checks the files themselves).

The directory has its own ``.gitignore`` (``*``), as pytest's cache does, so a checkout
stays clean.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import os
import tempfile
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .fixtures import Decoded

#: bump when the layout of an entry changes; a change of the decoding that fills it
#: (``fixtures.decode``) changes :func:`decoder` by itself
FORMAT = "2"
DIRECTORY = ".cache"
ENV = "LOSSCONF_FIXTURE_CACHE"


def enabled() -> bool:
    """Off when ``LOSSCONF_FIXTURE_CACHE`` is ``0`` (or ``off``, ``no``, ``false``)."""
    return os.environ.get(ENV, "1").strip().lower() not in ("0", "off", "no", "false")


@functools.cache
def decoder() -> str:
    """This harness's decoding, as part of every entry's key: the entry format and a
    digest of the source of ``fixtures.decode`` (so an edited decoder never reads what an
    older one wrote, even if nobody bumps FORMAT)."""
    from . import fixtures

    try:
        source = inspect.getsource(fixtures.decode) + inspect.getsource(fixtures.Decoded)
    except (OSError, TypeError):  # no source (e.g. a zipped install): the format alone
        source = ""
    return f"{FORMAT}-{hashlib.sha256(source.encode()).hexdigest()[:12]}"


def entry_path(fixture: Path, digest: str) -> Path:
    return fixture.parent / DIRECTORY / f"{fixture.stem}.{digest}.v{decoder()}.bin"


#: an entry: this line, a JSON header line, then the payload -- the text (the compact
#: case descriptions as JSON, see :func:`_shared`, a NUL, the number strings joined by
#: newlines; UTF-8), the numbers (``values`` then ``lo``, little-endian float64) and
#: where each number string ends in the text (little-endian int32)
MAGIC = b"lossconf decoded fixture\n"


def _seal(fixture_name: str, digest: str, payload: bytes | memoryview) -> str:
    """A CRC-32 of the entry's key and payload. It guards against accidents -- a torn
    write, a changed byte --, which is all a seal can do: anyone who can write the
    entry can write its seal, whatever the checksum (the fixture files themselves are
    checked against the SHA-256 digests of ``MANIFEST.json`` on every run)."""
    crc = zlib.crc32(f"{decoder()}\0{fixture_name}\0{digest}\0".encode())
    return f"crc32:{zlib.crc32(payload, crc):08x}"


def read(fixture: Path, digest: str) -> Decoded | None:
    """The decoded file for ``fixture`` with SHA-256 ``digest``, or None (no entry, or an
    entry that fails its own digest, which is then removed)."""
    from .fixtures import Decoded, Texts

    path = entry_path(fixture, digest)
    try:
        data = path.read_bytes()
    except OSError:
        return None
    try:
        if not data.startswith(MAGIC):
            raise ValueError("not a cache entry")
        end = data.index(b"\n", len(MAGIC))
        header = json.loads(data[len(MAGIC) : end])
        first = end + 1  # the payload: data[first:]
        n_text, n = int(header["text_bytes"]), int(header["numbers"])
        if (
            header.get("format") != decoder() or header.get("fixture") != fixture.name or header.get("digest") != digest
            or len(data) - first != n_text + 20 * n
            or header.get("seal") != _seal(fixture.name, digest, memoryview(data)[first:])
        ):
            raise ValueError("the entry does not match its header")
        split = data.index(b"\0", first, first + n_text)
        doc = json.loads(data[first:split])
        at = first + n_text
        numbers = np.frombuffer(data, dtype="<f8", count=2 * n, offset=at).astype(np.float64).reshape(2, n)
        ends = np.frombuffer(data, dtype="<i4", count=n, offset=at + 16 * n).astype(np.int64)
        blob = data[split + 1 : first + n_text]
        if n and (ends[-1] != len(blob) or (ends[1:] <= ends[:-1]).any()):
            raise ValueError("inconsistent entry")
        return Decoded(doc["loss"], _unshared(doc), Texts(blob, ends), numbers[0], numbers[1])
    except Exception:
        _remove(path)
        return None


def write(fixture: Path, digest: str, decoded: Decoded) -> None:
    """Keep ``decoded`` for the next run (replacing entries of older versions of the same
    file); silently nothing where the directory cannot be written."""
    from .fixtures import Texts

    directory = fixture.parent / DIRECTORY
    try:
        directory.mkdir(exist_ok=True)
        ignore = directory / ".gitignore"
        if not ignore.exists():
            ignore.write_text("# the decoded-fixtures cache of lossconf (conformance/fixture_cache.py)\n*\n")
        meta = json.dumps(_shared(decoded), separators=(",", ":"))
        texts = decoded.texts if isinstance(decoded.texts, Texts) else Texts("\n".join(decoded.texts).encode("utf-8"))
        if len(texts.blob) >= 2**31:
            return  # (the string ends are int32)
        text = meta.encode("utf-8") + b"\0" + texts.blob
        numbers = np.stack([decoded.values, decoded.lo]).astype("<f8").tobytes() + texts.ends.astype("<i4").tobytes()
        payload = text + numbers
        header = {
            "format": decoder(), "fixture": fixture.name, "digest": digest, "text_bytes": len(text),
            "numbers": len(decoded.texts), "seal": _seal(fixture.name, digest, payload),
        }
        fd, tmp = tempfile.mkstemp(dir=directory, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(MAGIC + json.dumps(header).encode("ascii") + b"\n" + payload)
            os.replace(tmp, entry_path(fixture, digest))
        finally:
            _remove(Path(tmp))
        for old in directory.glob(f"{fixture.stem}.*"):
            if old.name != entry_path(fixture, digest).name and old.name.split(".")[0] == fixture.stem:
                _remove(old)
    except OSError:
        return


#: the fields of a compact case description (see ``fixtures.Decoded``) that many cases of
#: a file share, kept once per entry: tags, options, given_options
SHARED = (3, 4, 5)


def _shared(decoded: Decoded) -> dict[str, Any]:
    """The entry's JSON: the loss, a table of the distinct shared fields, and the cases
    with those fields replaced by their position in the table (a third less to parse)."""
    table: list[Any] = []
    where: dict[str, int] = {}
    cases = []
    for case in decoded.cases:
        case = list(case)
        for k in SHARED:
            key = json.dumps(case[k], separators=(",", ":"))
            if key not in where:
                where[key] = len(table)
                table.append(case[k])
            case[k] = where[key]
        cases.append(case)
    return {"loss": decoded.loss, "shared": table, "cases": cases}


def _unshared(doc: dict[str, Any]) -> list[list[Any]]:
    """The compact case descriptions of an entry's JSON, each with its own copies of the
    shared fields (so that no two cases share a mutable list or dict)."""
    table = doc["shared"]
    cases = doc["cases"]
    for case in cases:
        case[3] = list(table[case[3]])
        case[4] = dict(table[case[4]])
        case[5] = list(table[case[5]])
    return cases


def _remove(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass
