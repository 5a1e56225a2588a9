"""``python -m bench.measure commcredits ARGS``: run the CLI in this process, then print its
peak RSS on stderr (``peak_rss_mb=N``) for the benchmark that started it."""

from __future__ import annotations

import resource
import sys


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
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak_rss_mb={rss:.1f}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
