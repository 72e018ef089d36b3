#!/usr/bin/env bash
# Creates anomon's topics with the partitions and configs of streams/topics.json.
set -euo pipefail
KT=/opt/kafka/bin/kafka-topics.sh
create() {  # name partitions configs...
  local name=$1 parts=$2; shift 2
  local args=()
  for c in "$@"; do args+=(--config "$c"); done
  "$KT" --bootstrap-server "$BOOTSTRAP" --create --if-not-exists --topic "$name" \
    --partitions "$parts" --replication-factor "$REPLICATION" "${args[@]}"
}
create customer-events "$PARTITIONS" retention.ms=604800000
create customer-alerts "$PARTITIONS" retention.ms=2419200000
create customer-events-dlq "$PARTITIONS" retention.ms=1209600000
create customer-events-late "$PARTITIONS" retention.ms=1209600000
create anomon-customer-state-changelog "$PARTITIONS" cleanup.policy=compact
