#!/usr/bin/env bash
# Builds and runs the graphs with TensorFlow Java's GPU native build (Maven profile `gpu`,
# classifier linux-x86_64-gpu, ~526 MB): on a machine without a GPU (or without CUDA 12 + cuDNN 9 on
# the library path) TensorFlow falls back to the CPU and the results must be unchanged. On a GPU
# machine the same tests run on the GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
mvn -B -Pgpu -Dtest='ExecConfigTest,HfReferenceTest,GradientTest,SamplerTest,BtStepFixtureTest' -Dsurefire.failIfNoSpecifiedTests=false test
# Restore the CPU classpath that ./rme uses (target/classpath.txt is rewritten by every compile).
mvn -B -q -DskipTests compile
