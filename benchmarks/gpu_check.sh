#!/usr/bin/env bash
# The GPU half of the course, checked in one run of at most 10 minutes, without network:
#   benchmarks/gpu_check.sh               on CUDA: each chapter's code at small sizes (a short training with mixed
#                                         precision and channels_last, DARTS first and second order and GDAS, a
#                                         supernet, candidate trainings as the benchmark trains them, the cost
#                                         model of `tutorial-nas plan` calibrated and checked on the card), then the
#                                         device report; results in benchmarks/results/<card>.json and .md
#   benchmarks/gpu_check.sh --dry-run     the same on the CPU at tiny sizes, well under a minute (or DRY_RUN=1)
# Other options go to benchmarks/gpu_report.py (--out PATH, --profile, --candidates N, --synthetic).
# CIFAR-10 is used when it is in the data cache ($TUTORIAL_NAS_DATA, default ~/.cache/tutorial_nas); otherwise
# CIFAR-sized synthetic data is made on the spot: nothing is downloaded.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=$(command -v python3)
dry=${DRY_RUN:-0}
args=()
for a in "$@"; do
  if [ "$a" = --dry-run ]; then dry=1; else args+=("$a"); fi
done
export TQDM_DISABLE=1 MPLBACKEND=Agg PYTHONHASHSEED=0
# the package from this checkout, also where it is not installed: a bare machine that has torch, numpy, pandas,
# scipy, scikit-learn and matplotlib but not the course's notebook packages (ipywidgets, graphviz, mlxtend)
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
unset TUTORIAL_NAS_PROFILE  # the sizes are the report's: gpu on CUDA, ci in a dry run

if [ "$dry" = 1 ]; then
  echo "dry run: every stage on the CPU at tiny sizes, on synthetic data (nothing here is a GPU figure)"
  exec timeout 300 "$PY" benchmarks/gpu_report.py --dry-run ${args[@]+"${args[@]}"}
fi

if ! "$PY" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  echo "no CUDA device visible to torch here; on a machine without one, run: $0 --dry-run" >&2
  exit 2
fi
if command -v nvidia-smi >/dev/null 2>&1; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
fi
cifar="${TUTORIAL_NAS_DATA:-$HOME/.cache/tutorial_nas}/cifar10/cifar-10-batches-py"
if [ -d "$cifar" ]; then
  echo "data: CIFAR-10 from $cifar"
else
  echo "data: CIFAR-10 is not cached ($cifar): CIFAR-sized synthetic data, made on the spot"
  args+=(--synthetic)
fi
# the report writes its JSON and Markdown after every stage: if the time limit stops it, what ran is kept
exec timeout 570 "$PY" benchmarks/gpu_report.py ${args[@]+"${args[@]}"}
