#!/usr/bin/env bash
# Reproduce TinyMathReason-1B: set up the environment, run a profile's stages, build figures and the paper, and
# print the reproduction verdict.
#
#   bash reproduce.sh                  # the cpu profile: every stage on CPU, offline (about 40 minutes on 2 cores)
#   bash reproduce.sh smoke            # every stage at CI size (a few minutes)
#   bash reproduce.sh paper            # full scale: TPU v4-32 pretraining, 1x A100 SFT/GRPO/eval, hub datasets
#   bash reproduce.sh paper --from sft # continue a profile from a stage (stages may run on different machines)
#   bash reproduce.sh figures          # figures, generated tables and the PDF from the committed results/ only
#   bash reproduce.sh test             # the test suite
# Extra arguments after the profile go to `tinymath run` (--from STAGE, --force).
#
# Knobs (environment variables) and defaults:
#   PYTHON=python3.11     interpreter used to create the virtual environment
#   VENV=.venv            virtual environment, created and filled from requirements.lock when missing or stale
#   TORCH_INDEX=          pip index for torch (e.g. https://download.pytorch.org/whl/cpu for the CPU wheel)
#   TINYMATH_RUNS=runs    root of run directories (runs/<profile>/<stage>/)
#   PYTEST_ARGS=          extra arguments for `bash reproduce.sh test`
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"
PYTHON=${PYTHON:-python3.11}
VENV=${VENV:-.venv}
TORCH_INDEX=${TORCH_INDEX:-}
export TINYMATH_RUNS=${TINYMATH_RUNS:-runs}
export TOKENIZERS_PARALLELISM=false PYTHONHASHSEED=0

mode=${1:-cpu}
[ $# -gt 0 ] && shift

setup() {
  local stamp="$VENV/.tinymath-installed"
  local want
  want=$(cat requirements.lock pyproject.toml | sha256sum | cut -d' ' -f1)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    return
  fi
  command -v "$PYTHON" >/dev/null || PYTHON=python3
  echo "== setting up $VENV with $("$PYTHON" --version 2>&1) (pinned: requirements.lock)"
  [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
  local pip=("$VENV/bin/python" -m pip install --quiet --disable-pip-version-check)
  # torch first, pinned, so that no later requirement can pull a different (CUDA) build.
  "${pip[@]}" ${TORCH_INDEX:+--index-url "$TORCH_INDEX"} "torch==$(sed -n 's/^torch==//p' requirements.lock)"
  "${pip[@]}" -r requirements.lock
  "${pip[@]}" --no-deps -e .
  echo "$want" > "$stamp"
}

offline() {
  # The offline profiles never touch the network; the paper profile may stream hub datasets.
  export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
}

tinymath() { "$VENV/bin/tinymath" "$@"; }

build_paper() {
  tinymath report figures --results results/cpu --out figures
  tinymath report paper --results results --out paper/generated
  "$VENV/bin/python" -c "from pathlib import Path; from tinymath.report import readme; \
readme.update(Path('README.md'), Path('results/cpu'))"
  if command -v latexmk >/dev/null; then
    (cd paper && latexmk -pdf -interaction=nonstopmode -halt-on-error -quiet main.tex >/dev/null)
    echo "paper:   paper/main.pdf"
  else
    echo "paper:   not built (latexmk missing: apt-get install latexmk texlive-latex-recommended texlive-fonts-recommended)"
  fi
}

case "$mode" in
  test|figures|smoke|cpu|paper) ;;
  *)
    echo "reproduce.sh: unknown mode '$mode': expected smoke, cpu, paper, figures or test" >&2
    exit 2
    ;;
esac

setup
case "$mode" in
  test)
    offline
    "$VENV/bin/python" -m pytest ${PYTEST_ARGS:-}
    ;;
  figures)
    offline
    build_paper
    echo "figures: figures/"
    ;;
  smoke|cpu|paper)
    [ "$mode" = paper ] || offline
    tinymath run --profile "$mode" "$@"
    fresh="$TINYMATH_RUNS/$mode/report/results"
    echo
    echo "results: $fresh  (publish with: tinymath report publish --profile $mode)"
    echo "figures: $TINYMATH_RUNS/$mode/report/figures"
    [ "$mode" = cpu ] && build_paper
    echo
    if [ -d "results/$mode" ]; then
      tinymath compare "$fresh" "results/$mode"
    else
      echo "verdict: no committed results/$mode yet; publish yours with: tinymath report publish --profile $mode"
    fi
    ;;
esac
