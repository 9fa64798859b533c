#!/usr/bin/env bash
# Replaces a failed chunkserver of a group with a new, running, empty one, without a person:
# only chunktool and transfer, and their --json output (read with jq).
#
#   usage: replace-chunkserver.sh GROUP NEW_HOST:PORT
#
# Start the new chunkserver first, e.g.
#   speedy chunkserver --group 1 --listen 10.0.0.9:7657 --data /srv/speedy --master "$SPEEDY_MASTER"
# The master is $SPEEDY_MASTER (default http://127.0.0.1:8099). TRANSFER_RATE (MB/s, default 0:
# no limit) spares a busy cluster. Exit status: 0 the group is whole and verifies clean; 1 the
# transfer or the verification found problems (run the script again: transfer resumes); 2 it could
# not run (bad arguments, no failed member, master unreachable).
set -euo pipefail

group=${1:?usage: replace-chunkserver.sh GROUP NEW_HOST:PORT}
new_addr=${2:?usage: replace-chunkserver.sh GROUP NEW_HOST:PORT}
rate=${TRANSFER_RATE:-0}
log() { printf '%s replace-chunkserver: %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

# 1. Which member failed? A DOWN or OFFLINE member of the group (status exits 1 while a group is
#    not healthy; that is expected here, so only 2 stops us).
status_json=$(chunktool status --json) || [ $? -eq 1 ] || { log "cannot read the cluster status"; exit 2; }
dead=$(jq -r --argjson g "$group" --arg new "$new_addr" \
  '.groups[] | select(.id == $g) | .members[] | select((.status == "DOWN" or .status == "OFFLINE") and .addr != $new) | .id' \
  <<<"$status_json")
count=$(grep -c . <<<"$dead" || true)
if [ "$count" -ne 1 ]; then
  log "group $group has $count DOWN or OFFLINE members (${dead//$'\n'/ }); expected exactly one"
  exit 2
fi
log "group $group: replacing $dead with $new_addr"

# 2. Fence the dead member: if it comes back it must not serve stale data or take writes.
chunktool server set-status "$dead" offline --json >/dev/null
log "$dead set OFFLINE"

# 3. Register the new chunkserver as TRANSFERRING (it may have joined by heartbeat already):
#    from now on it takes every new write of the group.
chunktool server add "$new_addr" --group "$group" --status transferring --json >/dev/null
log "$new_addr registered in group $group"

# 4. Fill it from a healthy member, verify the copy, retire the dead member, mark the new one RW.
transfer_json=$(transfer --group "$group" --to "$new_addr" --replaces "$dead" --rate "$rate" --json) || {
  rc=$?
  log "transfer did not complete (exit $rc); run this script again to resume"
  printf '%s\n' "$transfer_json"
  exit "$rc"
}
jq -e '.complete' <<<"$transfer_json" >/dev/null
log "transfer: $(jq -r '"\(.chunksCopied) chunks, \(.bytesCopied) bytes in \(.seconds | floor) s; removed \(.retired | join(",")); new member \(.toId) is RW"' <<<"$transfer_json")"

# 5. Verify the whole group: every replica lists the same chunks and every chunk reads clean.
#    On a busy cluster a chunk being written can differ for a moment, so try a few times.
for attempt in 1 2 3; do
  if verify_json=$(chunktool verify --group "$group" --json); then
    log "verify: $(jq -r '"\(.chunksChecked) chunks on \(.members | length) members, clean"' <<<"$verify_json")"
    jq -c --argjson t "$transfer_json" '{group, clean, chunksChecked, newMember: $t.toId, removed: $t.retired, copied: $t.chunksCopied}' <<<"$verify_json"
    exit 0
  fi
  log "verify attempt $attempt found problems: $(jq -c '{missing, extra, corrupt}' <<<"$verify_json" 2>/dev/null || echo "(no report)")"
  sleep 2
done
log "group $group does not verify clean; see chunktool verify --group $group and docs/recovery.md"
exit 1
