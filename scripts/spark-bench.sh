#!/usr/bin/env bash
# Rows per second of `rme spark-score` in Spark's local mode with 1 and 2 executor cores (one model
# shared by the JVM's tasks, and one session per task slot) against plain `rme score`, on the same
# rows: a linear ensemble (K = 3) of the bench-llama preset (tf-graphs/bench-llama.json), rows of
# 32-128 random token ids, in one JVM (SparkScoreBenchmark, on the test classpath): each Spark
# setting's session starts before its clock, and each timed job includes its model load.
#   N=384 bash scripts/spark-bench.sh        (WORK=DIR keeps the model, rows and outputs there)
set -euo pipefail
cd "$(dirname "$0")/.."
n="${N:-384}"
work="${WORK:-$(mktemp -d)}"
mkdir -p "$work"
export RME_JAVA_OPTS="${RME_JAVA_OPTS:--Xmx3g}"

if [[ ! -f "$work/model/run.json" ]]; then
  python3 - "$work/syn.jsonl" <<'PY'
import json, random, sys
rng = random.Random(1)
with open(sys.argv[1], "w") as f:
    for _ in range(32):
        a = [rng.randrange(3, 8192) for _ in range(rng.randrange(16, 48))]
        b = [rng.randrange(3, 8192) for _ in range(rng.randrange(16, 48))]
        f.write(json.dumps({"chosen_ids": a, "rejected_ids": b}) + "\n")
PY
  ./rme train-rm --model tf-graphs/bench-llama.json --data "$work/syn.jsonl" --format tokenized \
    --out "$work/model" --ensemble linear --k 3 --steps 1 --batch-size 8 --grad-accum 1 \
    --eval-fraction 0.25 >/dev/null 2>"$work/train.log" || { cat "$work/train.log"; exit 1; }
fi
for rows in "$n"; do
  python3 - "$work/rows-$rows.jsonl" "$rows" <<'PY'
import json, random, sys
rng = random.Random(2)
with open(sys.argv[1], "w") as f:
    for i in range(int(sys.argv[2])):
        ids = [rng.randrange(3, 8192) for _ in range(rng.randrange(32, 129))]
        f.write(json.dumps({"id": i, "input_ids": ids}) + "\n")
PY
done

mvn -o -q -B test-compile >/dev/null 2>&1 || mvn -q -B test-compile
echo "rows: $n of 32-128 tokens; model: bench-llama linear K=3; $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg)"
rm -rf "$work"/bench-out-*
# shellcheck disable=SC2046
java -Xmx3g $(sed -n 's/.*<spark.java.options>\(.*\)<\/spark.java.options>.*/\1/p' pom.xml) \
  -cp "target/test-classes:target/classes:$(cat target/classpath.txt):$(cat target/classpath-spark.txt)" \
  dev.rewardensemble.spark.SparkScoreBenchmark "$work/model" "$work/rows-$n.jsonl" "$work" 2>/dev/null
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
