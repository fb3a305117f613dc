# Sourced by run.sh and test.sh: create .venv with Python 3.11 and install the project once,
# again only when pyproject.toml changes. Each phase says what it does and how long it took, so a
# first run (about two minutes of installing) is never silent.
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
_oto_phase() {  # _oto_phase "label" command…: announce, run, report the duration
  local label=$1 started=$SECONDS
  shift
  echo "▸ $label …"
  "$@" || { echo "✗ $label failed after $((SECONDS - started)) s" >&2; return 1; }
  echo "✓ $label ($((SECONDS - started)) s)"
}
if [ ! -x .venv/bin/python ]; then
  _oto_phase "creating the Python environment (.venv, $PYTHON)" "$PYTHON" -m venv .venv
fi
stamp=.venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)
if [ ! -f "$stamp" ]; then
  _oto_phase "updating pip" .venv/bin/python -m pip install --quiet --upgrade pip
  _oto_phase "installing the project and its dependencies (about two minutes the first time)" \
    .venv/bin/python -m pip install --quiet --progress-bar off -e ".[test]"
  rm -f .venv/.installed-*
  touch "$stamp"
fi
# An editable install compiles nothing of the project, and with PYTHONDONTWRITEBYTECODE set no
# import does either: compile what changed (0.1 s when nothing did), so no start compiles source.
.venv/bin/python -m compileall -q shared services dashboard >/dev/null || true
