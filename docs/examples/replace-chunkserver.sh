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
# not run (bad arguments, several failed members, master or chunkserver unreachable).
set -euo pipefail

group=${1:?usage: replace-chunkserver.sh GROUP NEW_HOST:PORT}
new_addr=${2:?usage: replace-chunkserver.sh GROUP NEW_HOST:PORT}
rate=${TRANSFER_RATE:-0}
log() { printf '%s replace-chunkserver: %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

# 1. Register the new chunkserver as TRANSFERRING (it may have joined by heartbeat already): from
#    now on it takes every new write of the group, and the master fences the DOWN member OFFLINE.
added=$(chunktool server add "$new_addr" --group "$group" --status transferring --json) || exit 2
new_id=$(jq -r '.serverId' <<<"$added")
log "$new_id at $new_addr is TRANSFERRING in group $group"

# 2. Which member does it replace? The group's DOWN or OFFLINE member. None left means an earlier
#    run removed it already and stopped before the end: carry on, transfer resumes.
dead=$(jq -r --arg new "$new_id" \
  '.group.members[] | select((.status == "DOWN" or .status == "OFFLINE") and .id != $new) | .id' <<<"$added")
count=$(grep -c . <<<"$dead" || true)
replaces=()
case "$count" in
  0) log "no DOWN or OFFLINE member left in group $group; resuming" ;;
  1) replaces=(--replaces "$dead")
     # Fence it (the master did when the replacement began; saying it again is harmless).
     chunktool server set-status "$dead" offline --json >/dev/null || exit 2
     log "replacing $dead (OFFLINE)" ;;
  *) log "group $group has $count DOWN or OFFLINE members (${dead//$'\n'/ }); replace them one at a time with --replaces"
     exit 2 ;;
esac

# 3. Fill it from a healthy member, verify the copy, retire the dead member, mark the new one RW.
#    Exit 1 means chunks could not be copied or verified: run the script again to resume.
rc=0
transfer_json=$(transfer --group "$group" --to "$new_addr" "${replaces[@]}" --rate "$rate" --json) || rc=$?
if [ "$rc" -ne 0 ] || ! jq -e '.complete' <<<"$transfer_json" >/dev/null 2>&1; then
  log "transfer did not complete (exit $rc); run this script again to resume"
  [ -n "$transfer_json" ] && printf '%s\n' "$transfer_json"
  exit $(( rc == 0 ? 1 : rc ))
fi
log "transfer: $(jq -r '"\(.chunksCopied) chunks copied (\(.bytesCopied) bytes) in \(.seconds | floor) s, \(.chunksWrittenByImageservers) written by imageservers meanwhile; removed \(.retired | join(",")); \(.toId) is RW"' <<<"$transfer_json")"

# 4. Verify the whole group: every replica lists the same chunks and every chunk reads clean.
#    On a busy cluster a chunk being written can differ for a moment, so try a few times.
for attempt in 1 2 3; do
  rc=0
  verify_json=$(chunktool verify --group "$group" --json) || rc=$?
  if [ "$rc" -eq 0 ]; then
    log "verify: $(jq -r '"\(.chunksChecked) chunks on \(.members | length) members, clean"' <<<"$verify_json")"
    jq -c --argjson t "$transfer_json" \
      '{group, clean, chunksChecked, newMember: $t.toId, removed: $t.retired, copied: $t.chunksCopied, writtenByImageservers: $t.chunksWrittenByImageservers}' \
      <<<"$verify_json"
    exit 0
  fi
  [ "$rc" -eq 2 ] && { log "verify could not run"; exit 2; }
  log "verify attempt $attempt found problems: $(jq -c '{missing, extra, corrupt}' <<<"$verify_json")"
  sleep 2
done
log "group $group does not verify clean; see chunktool verify --group $group and docs/recovery.md"
exit 1
