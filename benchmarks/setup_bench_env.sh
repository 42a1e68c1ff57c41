#!/usr/bin/env bash
# Build .venv-bench: a separate venv for the distill_speed benchmark, where torchdistill
# (which needs torchvision) and OUR distillation run on one and the same torch.
# torchvision does not import beside the project's torch 2.13 CPU wheel, hence torch 2.14.1
# + torchvision 0.29.1 here. Idempotent: a finished venv is left alone (stamp file).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3.11}"
VENV="${BENCH_VENV:-.venv-bench}"
STAMP="$VENV/.installed"
if [ -f "$STAMP" ]; then
  echo "$VENV already set up ($(cat "$STAMP"))"
  exit 0
fi
test -x "$VENV/bin/python" || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet "torch==2.14.1" "torchvision==0.29.1"
"$VENV/bin/python" -m pip install --quiet torchdistill
"$VENV/bin/python" -m pip install --quiet numpy scikit-learn pyyaml tqdm onnx onnxruntime skl2onnx
"$VENV/bin/python" -m pip install --quiet --no-deps -e .
"$VENV/bin/python" - <<'PY'
import torch, torchvision, torchdistill
print("torch", torch.__version__, "torchvision", torchvision.__version__, "torchdistill", torchdistill.__version__)
PY
"$VENV/bin/python" -c "import torch, torchvision, torchdistill; print(torch.__version__, torchvision.__version__, torchdistill.__version__)" > "$STAMP"
echo "$VENV ready: $(cat "$STAMP")"
