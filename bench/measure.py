"""``python -m bench.measure commcredits ARGS``: run the CLI in this process, then print its
peak RSS on stderr (``peak_rss_mb=N``) for the benchmark that started it.

The peak is ``VmHWM`` from ``/proc/self/status``: the high-water mark of this program's own
memory. ``getrusage``'s ``ru_maxrss`` would not do: Linux carries it across ``exec``, so a
child started by a big benchmark process would report the parent's size."""

from __future__ import annotations

import resource
import sys
from pathlib import Path


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # not Linux


def main() -> int:
    from commcredits.entrypoints.cli import app

    args = sys.argv[2:] if sys.argv[1:2] == ["commcredits"] else sys.argv[1:]
    code = 0
    try:
        result = app(args, standalone_mode=False)
        code = result if isinstance(result, int) else 0
    except SystemExit as e:
        code = int(e.code or 0)
    except Exception as e:  # report and fail like the CLI would
        print(f"error: {e}", file=sys.stderr)
        code = 1
    print(f"peak_rss_mb={peak_rss_mb():.1f}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
