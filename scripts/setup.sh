#!/usr/bin/env bash
# Create .venv and install cardio, its plugins and the test tools into it, at the versions in
# requirements.lock (what CI passes with). Safe to run again. `--bench` adds the benchmarks' extra (.[bench]).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
pip() { .venv/bin/python -m pip "$@"; }
pip install -q --upgrade pip setuptools wheel
# torch first and pinned, so no later requirement pulls another build.
.venv/bin/python -c "import torch, torchvision" 2>/dev/null || pip install -q -c requirements.lock torch==2.14.1 torchvision==0.29.1
extras=test,tensorboard  # tensorboard: train.tensorboard (its test runs in CI); the cluster service (services/cluster)
                          # brings submitit, for --executor local|slurm, and the scikit-learn service (services/sklearn)
                          # skops, for scikit-learn objects in a model bundle
[ "${1:-}" = "--bench" ] && extras=test,tensorboard,bench  # ./scripts/setup.sh --bench: the benchmarks' dependencies too
# the core's distribution was named `cardio` before cardio-crt (the index's `cardio` is another project): a venv made
# then keeps its old editable install beside the new one, and both would claim the import name
if pip show -q cardio >/dev/null 2>&1; then pip uninstall -q -y cardio; fi
# the kernel and every service (services/<name>: cardio-crt-stats, cardio-crt-testing...) in one pip command: the
# kernel requires the statistics service, the other services require the kernel, and the index has none of them for
# pip to fall back on
services=()
for service in services/*/; do
  [ -f "$service/pyproject.toml" ] || continue
  [ "$service" = services/report/ ] && service="services/report[explain]"  # the report service with Grad-CAM
  services+=(-e "$service")
done
pip install -q --no-build-isolation -c requirements.lock -e ".[$extras]" "${services[@]}"
for plugin in plugins/*/; do
  [ -f "$plugin/pyproject.toml" ] && pip install -q --no-build-isolation -c requirements.lock -e "$plugin"
done
# h5py: mmode_septal_flash reads RadImageNet's Keras .h5 weights with it (its radimagenet extra; tested in CI against
# a file Keras itself writes: the radimagenet-test extra, Keras 3 on torch)
pip install -q --no-build-isolation -c requirements.lock -e "plugins/mmode_septal_flash[radimagenet,radimagenet-test]"
.venv/bin/cardio plugins
