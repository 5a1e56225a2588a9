"""CDR files (``commcredits cdrs import``): checked whole without being held in memory,
then read again one CDR at a time for :func:`commcredits.services.cdrs.rate_all`.

The check keeps an 8-byte digest per call id; repeats are found by sorting the digests, and
only if two clash is the file read once more to name the repeated lines exactly."""

from __future__ import annotations

import csv
import hashlib
from array import array
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path

from commcredits.services.cdrs import Cdr, _cdr, _error, _records, _repeat, unknown_columns

MAX_LISTED = 1000  # bad lines listed in a refusal (the count says how many more)


def _digest(call_id: str) -> int:
    return int.from_bytes(hashlib.blake2b(call_id.encode(), digest_size=8).digest(),
                          "little", signed=True)


def check_file(path: Path) -> int:
    """Check a CDR file without holding it: returns the number of CDRs, or raises
    ``validation_error`` listing the bad lines (the first :data:`MAX_LISTED`)."""
    problems: list[tuple[int, str]] = []
    bad = 0
    digests = array("q")
    count = 0
    with path.open(encoding="utf-8", newline="") as fh:
        for line, row in _records(fh):
            cdr = _cdr(line, row)
            if isinstance(cdr, str):
                bad += 1
                if len(problems) < MAX_LISTED:
                    problems.append((line, cdr))
                continue
            digests.append(_digest(cdr.body["call_id"]))
            count += 1
    ordered = sorted(digests)
    clashes = {a for a, b in pairwise(ordered) if a == b}
    del ordered, digests
    if clashes:  # a digest seen twice: read again to name the repeats exactly
        bad += _repeats(path, clashes, problems)
    if bad:
        problems.sort()
        if bad > len(problems):
            problems.append((problems[-1][0], f"and {bad - len(problems)} more bad lines"))
        raise _error(problems)
    return count


def _repeats(path: Path, clashes: set[int], problems: list[tuple[int, str]]) -> int:
    first: dict[str, int] = {}
    found = 0
    with path.open(encoding="utf-8", newline="") as fh:
        for line, row in _records(fh):
            call_id = row.get("call_id", "")
            if not call_id or _digest(call_id) not in clashes:
                continue
            if call_id in first:
                found += 1
                if len(problems) < MAX_LISTED:
                    problems.append((line, _repeat(call_id, first[call_id])))
            elif not isinstance(_cdr(line, row), str):
                first[call_id] = line
    return found


def unknown_file_columns(path: Path) -> list[str]:
    """The header's columns that nothing reads (see ``cdrs.unknown_columns``)."""
    with path.open(encoding="utf-8", newline="") as fh:
        header = next(csv.reader(fh), [])
    return unknown_columns(h.strip().lstrip("\ufeff") for h in header)


def read_file(path: Path) -> Iterator[Cdr]:
    """The CDRs of a file :func:`check_file` accepted, one at a time."""
    with path.open(encoding="utf-8", newline="") as fh:
        for line, row in _records(fh):
            cdr = _cdr(line, row)
            if isinstance(cdr, str):  # the file changed since it was checked
                raise _error([(line, cdr)])
            yield cdr
