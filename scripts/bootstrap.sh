#!/usr/bin/env bash
# Create ./.venv and install the toolkit with its test dependencies. Safe to run again: it reinstalls only
# when setup.py or constraints.txt changed. Needs python3 (>= 3.10) with venv, and access to a package index.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
stamp=".venv/.installed-$(cat setup.py constraints.txt | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  # visdom 0.2.4 is an sdist whose build needs setuptools < 81: constrain the build environment too.
  export PIP_CONSTRAINT="$PWD/constraints.txt" PIP_BUILD_CONSTRAINT="$PWD/constraints.txt"
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[test]"
  rm -f .venv/.installed-*
  touch "$stamp"
fi
# visdom's dashboard fetches its JavaScript from CDNs on first start and stays blank offline: fill its static
# folder from the npm registry once (needs npm; without it the dashboard still works where there is internet).
if ! .venv/bin/python scripts/visdom_static.py --check >/dev/null 2>&1; then
  .venv/bin/python scripts/visdom_static.py || echo "warning: visdom's offline files were not installed (see above)" >&2
fi
