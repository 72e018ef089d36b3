#!/usr/bin/env bash
# Creates anomon's topics with the partitions and configs of streams/topics.json
# (a unit test keeps the two in step). Existing topics are left as they are.
# Environment: BOOTSTRAP (host:port), PARTITIONS, REPLICATION, APP_ID (the worker's
# ANOMON_APP_ID: the customer-state changelog is named after it).
set -euo pipefail
KT=/opt/kafka/bin/kafka-topics.sh
APP_ID="${APP_ID:-anomon}"
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
# erasure requests (anomon erase): as many partitions as the input topic
create customer-erasure "$PARTITIONS" retention.ms=604800000
# the customer table's changelog: compacted, as many partitions as the input topic
create "$APP_ID-customers-changelog" "$PARTITIONS" cleanup.policy=compact
"$KT" --bootstrap-server "$BOOTSTRAP" --list
