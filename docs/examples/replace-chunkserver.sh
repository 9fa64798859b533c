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
# not run (bad arguments, master or chunkserver unreachable). The dead member it replaces is the
# one the master fences OFFLINE when the replacement starts taking the group's writes.
set -euo pipefail

group=${1:?usage: replace-chunkserver.sh GROUP NEW_HOST:PORT}
new_addr=${2:?usage: replace-chunkserver.sh GROUP NEW_HOST:PORT}
rate=${TRANSFER_RATE:-0}
log() { printf '%s replace-chunkserver: %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

# 1. Register the new chunkserver (it may have joined by heartbeat already) and find its id.
added=$(chunktool server add "$new_addr" --group "$group" --json) || exit 2
new_id=$(jq -r '.serverId' <<<"$added")
new_status=$(jq -r --arg id "$new_id" '.group.members[] | select(.id == $id) | .status' <<<"$added")
transfer_json=null

if [ "$new_status" = "RW" ]; then
  # An earlier run got as far as the end of the transfer; only the verification is left.
  log "$new_id at $new_addr is RW already; verifying"
else
  # 2. Make it TRANSFERRING: from now on it takes every new write of the group, and the master
  #    fences the group's dead member OFFLINE for it (so it cannot come back stale).
  if [ "$new_status" != "TRANSFERRING" ]; then
    chunktool server set-status "$new_id" transferring --json >/dev/null || exit 2
  fi
  fenced=$(chunktool server list --group "$group" --json | jq -r --arg id "$new_id" '[.[] | select(.fencedBy == $id) | .id] | join(" ")')
  log "$new_id at $new_addr is TRANSFERRING in group $group; fenced for it: ${fenced:-none}"

  # 3. Fill it from a healthy member, verify the copy, retire the member fenced for it, mark
  #    it RW. Exit 1 means chunks could not be copied or verified: run the script again.
  rc=0
  transfer_json=$(transfer --group "$group" --to "$new_addr" --rate "$rate" --json) || rc=$?
  if [ "$rc" -ne 0 ] || ! jq -e '.complete' <<<"$transfer_json" >/dev/null 2>&1; then
    log "transfer did not complete (exit $rc); run this script again to resume"
    [ -n "$transfer_json" ] && printf '%s\n' "$transfer_json"
    exit $(( rc == 0 ? 1 : rc ))
  fi
  log "transfer: $(jq -r '"\(.chunksCopied) chunks copied (\(.bytesCopied) bytes) in \(.seconds | floor) s, \(.chunksWrittenByImageservers) written by imageservers meanwhile; removed \(.retired | join(",")); \(.toId) is RW"' <<<"$transfer_json")"
  jq -r '.notes[]' <<<"$transfer_json" | while read -r note; do log "note: $note"; done
fi

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
