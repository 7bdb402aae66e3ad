#!/bin/bash
# Wall time of `uv run router-cli --help` and a small `uv run router-cli infer`, cold (no .pyc) then warm, with
# Python writing its own bytecode (PYTHONDONTWRITEBYTECODE unset), for one value of [tool.uv] compile-bytecode.
# Usage: benchmarks/bytecode.sh COPY EXPORT_DIR true|false
#   COPY: a scratch copy of the repository (git ls-files | cpio); this script edits its pyproject.toml and .venv.
#   EXPORT_DIR: an exported model (router-cli export) with models named model-1 and model-2.
# Results are in docs/performance.md ("compile-bytecode").
set -euo pipefail
copy=$1 export_dir=$2 setting=$3
cd "$copy"
sed -i '/^compile-bytecode = /d' pyproject.toml
sed -i "s/^\[tool.uv\]$/[tool.uv]\ncompile-bytecode = $setting/" pyproject.toml
printf 'What is the capital of Australia?\nWrite a poem about the sea\n' > /tmp/bytecode-prompts.txt
find .venv packages -name __pycache__ -prune -exec rm -rf {} + 2>/dev/null || true
run() { env -u PYTHONDONTWRITEBYTECODE HF_HUB_OFFLINE=1 uv run "$@" > /dev/null 2>&1; }
t() { local s e; s=$(date +%s.%N); run "$@"; e=$(date +%s.%N); echo "$e - $s" | bc; }
env -u PYTHONDONTWRITEBYTECODE uv sync --all-packages -q
infer=(router-cli infer --model "$export_dir" --models-to-score model-1 model-2 --prompts-file /tmp/bytecode-prompts.txt
       --output-path /tmp/bytecode-out.json --threads 1)
echo "compile-bytecode=$setting help cold: $(t router-cli --help)"
echo "compile-bytecode=$setting help warm: $(t router-cli --help) $(t router-cli --help) $(t router-cli --help)"
echo "compile-bytecode=$setting infer cold: $(t "${infer[@]}")"
echo "compile-bytecode=$setting infer warm: $(t "${infer[@]}") $(t "${infer[@]}") $(t "${infer[@]}")"
