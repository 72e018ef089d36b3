#!/usr/bin/env bash
# Run Apache Kafka (one KRaft node) on 127.0.0.1 in the foreground, until Ctrl-C.
#
#   scripts/kafka/run-kafka.sh                # client port 9092
#   scripts/kafka/run-kafka.sh --port 19092   # another port
#   scripts/kafka/run-kafka.sh --help         # every option
#
# The first run fetches the Kafka jars from Maven Central with mvn (this directory's
# pom.xml) into ~/.cache/anomon/kafka-<version>/libs, or $ANOMON_KAFKA_CACHE; later
# runs reuse them. Needs Java 17+ and Maven. Uses .venv/bin/python when present,
# else $PYTHON, else python3, with anomon installed (make venv).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
if [[ -n "${PYTHON:-}" ]]; then
  python="$PYTHON"
elif [[ -x "$root/.venv/bin/python" ]]; then
  python="$root/.venv/bin/python"
else
  python="python3"
fi
export ANOMON_KAFKA_POM="${ANOMON_KAFKA_POM:-$root/scripts/kafka/pom.xml}"
export PYTHONPATH="$root/src:$root/tests/support${PYTHONPATH:+:$PYTHONPATH}"
exec "$python" -m brokers.apache_kafka "$@"
