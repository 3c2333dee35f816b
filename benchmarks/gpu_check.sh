#!/usr/bin/env bash
# GPU check: the tests marked gpu (skipped on CPU-only machines, CI included), then the
# training speed of the paper recipes on one GPU (benchmarks/train_step.py --accelerator gpu,
# the recipes' own input sizes and batch sizes, LSP train as data: the speed does not depend
# on which images are decoded). Needs POSELIT_DATA with lsp/ in it.
#
#   POSELIT_DATA=/data benchmarks/gpu_check.sh OUT_DIR [WORKERS]
#
# Writes OUT_DIR/gpu_tests.log and OUT_DIR/train_step_gpu.json.
set -uo pipefail
out=${1:?usage: gpu_check.sh OUT_DIR [WORKERS]}
workers=${2:-8}
mkdir -p "$out"
nvidia-smi -L || echo "nvidia-smi: not available"
python3 -m pytest -q -m gpu -p no:cacheprovider tests/test_codecs.py tests/test_metrics.py tests/test_predict.py \
  tests/test_methods.py tests/test_onnx.py 2>&1 | tee "$out/gpu_tests.log"
python3 benchmarks/train_step.py recipes/lsp/bulat_residual_3_joint.yaml recipes/lsp/belagiannis_recurrent2.yaml \
  recipes/lsp/luvizon_8blocks.yaml --accelerator gpu --precisions 32 bf16-mixed --channels-last both \
  --steps 20 --warmup 5 --verbose --override=--data.train=[lsp:train] --override=--data.num_workers="$workers" \
  --override=--model.init_args.init_from=null > "$out/train_step_gpu.json"
