# Sourced by the scripts: make .venv and install the project (again only when pyproject.toml
# changed). Works on a fresh clone with nothing but python3 (3.11+).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-$(command -v python3.11 || command -v python3)}"
if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "commcredits needs Python 3.11 or newer ($PY is $("$PY" --version))" >&2
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv"
  "$PY" -m venv .venv
fi
stamp=".venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "==> installing commcredits and its dependencies into .venv"
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -e ".[test]"
  rm -f .venv/.installed-*
  touch "$stamp"
fi
# PDF statements print in DejaVu Sans (Unicode: Cyrillic tenant names); Debian ships it
if [ ! -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] && [ -z "${COMMCREDITS_PDF_FONT:-}" ] \
    && command -v apt-get >/dev/null; then
  echo "==> installing Debian's fonts-dejavu-core (the PDF statements' font)"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq fonts-dejavu-core >/dev/null; } \
    || echo "!! could not install fonts-dejavu-core: PDF statements need COMMCREDITS_PDF_FONT"
fi
export PATH="$ROOT/.venv/bin:$PATH"
mkdir -p var
