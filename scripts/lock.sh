#!/usr/bin/env bash
# Refresh requirements.lock: resolve the newest versions the project's pyproject files allow in a
# scratch venv, run nothing, and write their exact versions. Run the suite before committing it.
set -euo pipefail
cd "$(dirname "$0")/.."
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
"${PYTHON:-python3}" -m venv "$scratch/venv"
pip() { "$scratch/venv/bin/python" -m pip "$@"; }
pip install -q --upgrade pip setuptools wheel
pip install -q torch==2.14.1 torchvision==0.29.1
# the kernel with every extra (the lock pins them all) and every service, in one pip command: the kernel requires the
# statistics service, the other services require the kernel
services=()
for service in services/*/; do [ -f "$service/pyproject.toml" ] && services+=(-e "$service"); done
pip install -q --no-build-isolation -e '.[test,bench,arrow]' "${services[@]}"
for plugin in plugins/*/; do
  [ -f "$plugin/pyproject.toml" ] && pip install -q --no-build-isolation -e "$plugin"
done
{ echo "# Exact versions CI passes with; scripts/setup.sh installs with -c this file. Refresh: scripts/lock.sh"
  pip freeze --exclude-editable | grep -v '^cardio'; } > requirements.lock
echo "wrote requirements.lock ($(grep -vc '^#' requirements.lock) packages); run the tests before committing it"
