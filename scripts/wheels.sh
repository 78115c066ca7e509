#!/usr/bin/env bash
# Build a wheel of every distribution in the repo (services/*, the kernel, plugins/*) and install the wheels, not
# editable, in a fresh venv; then, from a folder outside the checkout, run what a user who installed them would:
# `cardio plugins`, a small run and `cardio predict` on the cohort that run wrote. An editable install reads the
# source tree, so it hides what a wheel leaves out (package data, entry points, a path into the checkout); this does
# not. First the kernel, the statistics service and ONE plugin without the kernel's test extra and without the testing
# and cluster services (no pytest, no submitit) make a small run; then the other plugins and services join. CI runs it after setup (.ci/run); so can you:
# ./scripts/wheels.sh (3-6 min on 2 shared cores; KEEP=1 keeps its folder and logs).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
build_py=${BUILD_PYTHON:-.venv/bin/python}  # the setup's venv: setuptools is there for --no-build-isolation
# the venv is torch's 1.2 GB in 14k files: in memory (/dev/shm, where 4 GB are free) writing and deleting it takes
# seconds, where a busy disk mounted with discard took minutes; WHEELS_TMP chooses another place
base=${TMPDIR:-/tmp}
[ -d /dev/shm ] && [ "$(df -Pk /dev/shm | awk 'NR == 2 {print $4}')" -gt 4000000 ] && base=/dev/shm
tmp=$(mktemp -d "${WHEELS_TMP:-$base}/cardio-wheels.XXXXXX")
[ -n "${KEEP:-}" ] || trap 'rm -rf "$tmp"' EXIT
wheels=$tmp/wheels venv=$tmp/venv work=$tmp/work
mkdir -p "$wheels" "$work"
SECONDS=0

fail() { echo "wheels: FAILED: $*" >&2; exit 1; }
# step NAME CMD...: prints the command, runs it with its output in $tmp/NAME.log; on failure the log's tail, then one
# line naming the step and the log's last line
step() {
  local name=$1; shift
  echo "+ [${SECONDS}s] ${*//$tmp/\$tmp}"
  local rc=0
  "$@" >"$tmp/$name.log" 2>&1 || rc=$?
  if [ "$rc" -ne 0 ]; then
    tail -n 15 "$tmp/$name.log" >&2
    fail "step $name exited with $rc: $(tail -n 1 "$tmp/$name.log")"
  fi
}

# auc RUN [TASK]: the pooled AUC of each model (of TASK, else of every task) in RUN/metrics.json, with its CI
auc() {
  "$venv/bin/python" - "$1" "${2:-}" <<'PY'
import json, sys
for e in json.load(open(sys.argv[1] + "/metrics.json"))["estimates"]:
    if (e["metric"], e["fold"], e["subgroup"], e["method"]) == ("auc", "pooled", None, "delong") \
            and sys.argv[2] in ("", e["task"]):
        print("  AUC {model}, {task}: {estimate:.3f} [{ci_low:.3f}, {ci_high:.3f}], n {n}".format(**e))
PY
}

# 1. The wheels, built from a copy of the checkout's files (tracked and untracked, not ignored): setuptools builds in
# the source folder and packs its build/lib, where a module deleted from the source would linger into the wheel
mkdir "$tmp/src"
git ls-files -z -c -o --exclude-standard | tar --null --ignore-failed-read -T - -cf - 2>/dev/null \
  | tar -xf - -C "$tmp/src" || fail "copying the checkout's files to $tmp/src"
for dist in "$tmp"/src/services/*/ "$tmp/src/" "$tmp"/src/plugins/*/; do
  [ -f "$dist/pyproject.toml" ] || continue
  step "wheel-$(basename "$dist")" "$build_py" -m pip wheel -q --no-deps --no-build-isolation -w "$wheels" "$dist"
done
echo "  built: $(cd "$wheels" && ls *.whl | tr '\n' ' ')"

# 2. A fresh venv: torch and torchvision first, pinned, as scripts/setup.sh installs them (pip's cache and the local
# index serve them); then the wheels, their dependencies at the lock's versions. The services are on no index:
# the wheels' folder joins pip's find-links (PIP_FIND_LINKS, or the pip config's: an offline wheelhouse, README), which
# a --find-links option would replace. --no-compile: no .pyc for all of torch's files at install (an import compiles
# what it reads)
step venv "${PYTHON:-python3}" -m venv "$venv"
lock=$repo/requirements.lock
pip() { "$venv/bin/python" -m pip "$@"; }
links=${PIP_FIND_LINKS:-$(pip config get global.find-links 2>/dev/null || true)}
step torch pip install -q --no-compile -c "$lock" torch==2.14.1 torchvision==0.29.1
# the kernel, the statistics service and one plugin with the services it requires (imaging: the AHA 17 segments;
# report: its figures, and the run's report; public: its starting weights checked by hash)
step install-minimal env PIP_FIND_LINKS="$wheels $links" "$venv/bin/python" -m pip install -q --no-compile -c "$lock" \
  "$wheels"/cardio_crt_stats-*.whl "$wheels"/cardio_crt-[0-9]*.whl "$wheels"/cardio_crt_imaging-*.whl \
  "$wheels"/cardio_crt_report-*.whl "$wheels"/cardio_crt_public-*.whl "$wheels"/cardio_perfusion_polar-*.whl

# everything below runs outside the checkout (no source folder on the path can stand in for an installed package),
# with a cache of its own
cd "$work"
export CARDIO_CACHE=$tmp/cache
unset PYTHONPATH
cardio=$venv/bin/cardio
where=$("$venv/bin/python" -c 'import cardio, cardio_stats, cardio_perfusion_polar as p
print(cardio.__file__, cardio_stats.__file__, p.__file__)') || fail "importing the installed packages"
for f in $where; do [[ $f == "$venv"/* ]] || fail "$f is imported from outside the fresh venv"; done
echo "  imported from the venv: ${where//$venv/\$venv}"
absent=$("$venv/bin/python" -c 'import importlib.util as u
print(*[m for m in ("pytest", "submitit", "skops") if u.find_spec(m)])')
[ -z "$absent" ] || fail "the venv without extras holds $absent (a dependency pulls it in)"
echo "  no extras, no testing or cluster service: pytest, submitit and skops are not installed"

step plugins-minimal "$cardio" plugins
grep -q perfusion_polar "$tmp/plugins-minimal.log" || fail "cardio plugins does not list perfusion_polar"
grep -q "service  adds: cardio report, report.md and report.html" "$tmp/plugins-minimal.log" \
  || fail "cardio plugins does not list the report service"
sed 's/^/  /' "$tmp/plugins-minimal.log"
step run-perfusion "$cardio" run --plugin perfusion_polar --out perfusion --set perfusion_polar.n_patients=48 \
  --set perfusion_polar.size=32 --set perfusion_polar.step1.epochs=1 --set perfusion_polar.step2.epochs=1 \
  --set cv.folds=2 --set stats.n_resamples=100 --set final_model=false --set explain=false --set report.figures=false
[ -s perfusion/metrics.json ] && [ -s perfusion/report.md ] || fail "the perfusion_polar run wrote no metrics or report"
grep -E "WARNING|done in" "$tmp/run-perfusion.log" | sed 's/^/  /' || true
auc perfusion impaired_mfr
# without the cluster service, a process executor is refused in one line naming it (exit 2), before anything is written
echo "+ [${SECONDS}s] ${cardio/#$tmp/\$tmp} run --plugin perfusion_polar --out local --executor local  (refused)"
rc=0; said=$("$cardio" run --plugin perfusion_polar --out local --executor local 2>&1) || rc=$?
[ "$rc" -eq 2 ] && [[ $said == *cardio-crt-cluster* ]] && [ ! -e local ] \
  || fail "--executor local without the cluster service: exit $rc, not 2 with one line naming it: ${said##*$'\n'}"
echo "  exit $rc: ${said##*$'\n'}"

# 3. The other plugins join: `cardio plugins` lists all five, a small spect_polar run keeps its final model, and
# `cardio predict` applies it to the synthetic cohort the run wrote into the cache
step install-all env PIP_FIND_LINKS="$wheels $links" "$venv/bin/python" -m pip install -q --no-compile -c "$lock" \
  "$wheels"/*.whl
step plugins "$cardio" plugins
for p in ecg_transfer echo_cmr mmode_septal_flash perfusion_polar spect_polar; do
  grep -q "$p" "$tmp/plugins.log" || fail "cardio plugins does not list $p"
done
grep -q "service  adds: cardio fuse" "$tmp/plugins.log" || fail "cardio plugins does not list the fusion service"
grep -q "service  adds: cardio sweep, --executor local, --executor slurm" "$tmp/plugins.log" \
  || fail "cardio plugins does not list the cluster service"
grep -q "service  adds: cardio data" "$tmp/plugins.log" || fail "cardio plugins does not list the public-data service"
grep -q "service  adds: cardio new-plugin" "$tmp/plugins.log" || fail "cardio plugins does not list the testing service"
grep -q "service  adds: cardio predict" "$tmp/plugins.log" || fail "cardio plugins does not list the deploy service"
sed 's/^/  /' "$tmp/plugins.log"
step data-list "$cardio" data list
grep -q "^mitdb " "$tmp/data-list.log" || fail "cardio data list does not offer ecg_transfer's mitdb"
# the new-plugin templates are the testing service's package data: read from the installed wheel, not the checkout
step new-plugin "$cardio" new-plugin wheelcheck --dir new
written=$(find new/cardio-wheelcheck -type f | wc -l)
[ -s new/cardio-wheelcheck/cardio_wheelcheck/plugin.py ] || fail "cardio new-plugin wrote no plugin.py (new/)"
echo "  cardio new-plugin: $written files in new/cardio-wheelcheck"
# the testing service is a pytest plugin (pytest11): pytest finds the contract suite of every installed plugin
step contract-suite "$venv/bin/python" -m pytest -p no:cacheprovider --cardio-contract --collect-only -q
for p in ecg_transfer echo_cmr mmode_septal_flash perfusion_polar spect_polar; do
  grep -q "TestContract_$p::" "$tmp/contract-suite.log" || fail "pytest --cardio-contract collects no suite for $p"
done
echo "  pytest --cardio-contract: $(tail -n 1 "$tmp/contract-suite.log")"
step run-spect "$cardio" run --plugin spect_polar --out spect --set spect_polar.synthetic.n_patients=30 \
  --set spect_polar.synthetic.slices=20 --set spect_polar.synthetic.size=40 --set spect_polar.phase.rings=16 \
  --set spect_polar.phase.sectors=32 --set spect_polar.autoencoder.hidden=32 \
  --set spect_polar.autoencoder.iterations=20 --set cv.folds=2 --set stats.n_resamples=100 --set final_model=true \
  --set explain=false --set report.figures=false
[ -s spect/model/bundle.json ] || fail "the spect_polar run wrote no model bundle (spect/model/bundle.json)"
grep -E "WARNING|done in" "$tmp/run-spect.log" | sed 's/^/  /' || true
auc spect
cohort=$(dirname "$(find "$CARDIO_CACHE" -name clinical.csv -path '*spect*' | head -n 1)")
[ -d "$cohort/volumes" ] || fail "no spect_polar cohort (clinical.csv beside volumes/) in the run's cache $CARDIO_CACHE"
step predict "$cardio" predict --model spect --cohort "$cohort" --out predicted
rows=$(($(wc -l <predicted/predictions.csv 2>/dev/null || echo 1) - 1))
[ "$rows" -gt 0 ] || fail "cardio predict wrote no predictions (predicted/predictions.csv)"
grep -E "WARNING|done in" "$tmp/predict.log" | sed 's/^/  /' || true
auc predicted
echo "  predicted/predictions.csv: $rows rows"
echo "wheels: passed ($(ls "$wheels" | wc -l) wheels installed in a fresh venv, not editable; ${SECONDS}s)"
