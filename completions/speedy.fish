function __speedy_should_offer_completions_for_flags_or_options -a expected_commands
    set -l non_repeating_flags_or_options $argv[2..]
    set -l non_repeating_flags_or_options_absent 0
    set -l positional_index 0
    set -l commands
    __speedy_parse_tokens
    test "$commands" = "$expected_commands"; and return $non_repeating_flags_or_options_absent
end

function __speedy_should_offer_completions_for_positional -a expected_commands positional_index_comparison expected_positional_index
    set -l non_repeating_flags_or_options
    set -l non_repeating_flags_or_options_absent 0
    set -l positional_index 0
    set -l commands
    __speedy_parse_tokens
    test "$commands" = "$expected_commands" -a \( "$positional_index" "$positional_index_comparison" "$expected_positional_index" \)
end

function __speedy_parse_tokens -S
    set -l unparsed_tokens (__speedy_tokens -pc)
    switch $unparsed_tokens[1]
    case 'speedy'
        __speedy_parse_subcommand 0 'h/help'
        switch $unparsed_tokens[1]
        case 'up'
            __speedy_parse_subcommand 0 'data=' 'groups=' 'replicas=' 'master-port=' 'chunkserver-port=' 'meta-port=' 'registry-port=' 'volume-size=' 'reserve=' 'compact-every=' 'gc-every=' 'auth' 'tls' 'retention=' 'sync=' 'upstream=+' 'upstream-credentials=+' 'upstream-ca=+' 'upstream-tag-ttl=' 'h/help'
        case 'chunkmaster'
            __speedy_parse_subcommand 0 'listen=' 'data=' 'database=' 'lease-ttl=' 'down-after=' 'advertise=' 'auto-repair' 'no-auto-repair' 'compare-every=' 'recovery-rate=' 'replace-after=' 'allow-same-zone' 'cluster-secret-file=' 'role-table=' 'insecure' 'tls-cert=' 'tls-key=' 'ca=' 'tls-min-version=' 'max-connections-per-client=' 'header-timeout=' 'h/help'
        case 'chunkserver'
            __speedy_parse_subcommand 0 'master=' 'group=' 'spare' 'listen=' 'advertise=' 'zone=' 'data=' 'id=' 'volume-size=' 'max-chunk=' 'reserve=' 'capacity=' 'heartbeat-interval=' 'compact-threshold=' 'compact-rate=' 'compact-every=' 'scrub-rate=' 'scrub-every=' 'cluster-secret-file=' 'role-table=' 'insecure' 'tls-cert=' 'tls-key=' 'ca=' 'tls-min-version=' 'max-connections-per-client=' 'header-timeout=' 'h/help'
        case 'metaserver'
            __speedy_parse_subcommand 0 'listen=' 'data=' 'database=' 'gc-every=' 'gc-grace=' 'gc-chunk-grace=' 'gc-compact' 'master=' 'id=' 'retention=' 'sync=' 'cluster-secret-file=' 'role-table=' 'insecure' 'tls-cert=' 'tls-key=' 'ca=' 'tls-min-version=' 'max-connections-per-client=' 'header-timeout=' 'h/help'
        case 'imageserver'
            __speedy_parse_subcommand 0 'listen=' 'master=' 'meta=' 'chunk-size=' 'memory-budget=' 'memory-per-client=' 'memory-wait=' 'client-idle-timeout=' 'htpasswd=' 'access=' 'token-key-file=' 'token-realm=' 'token-lifetime=' 'rate-limit=' 'upload-expiry=' 'hold-deadline=' 'ticket-lifetime=' 'id=' 'pull-record-interval=' 'uploads-per-repository=' 'uploads-per-client=' 'trusted-proxy=+' 'trusted-proxy-header=' 'audit-log=' 'upstream=+' 'upstream-credentials=+' 'upstream-ca=+' 'upstream-tag-ttl=' 'cluster-secret-file=' 'role-table=' 'insecure' 'tls-cert=' 'tls-key=' 'ca=' 'tls-min-version=' 'max-connections-per-client=' 'header-timeout=' 'h/help'
        case 'peer'
            __speedy_parse_subcommand 0 'listen=' 'registry=' 'cache=' 'cache-size=' 'ca=' 'chunk-window=' 'chunk-timeout=' 'client-idle-timeout=' 'tracker=' 'peer-listen=' 'peer-advertise=' 'peer-secret-file=' 'upload-rate=' 'blobs-from-registry' 'h/help'
        case 'tracker'
            __speedy_parse_subcommand 0 'listen=' 'peer-secret-file=' 'announce-interval=' 'master=' 'id=' 'cluster-secret-file=' 'role-table=' 'insecure' 'tls-cert=' 'tls-key=' 'ca=' 'tls-min-version=' 'max-connections-per-client=' 'header-timeout=' 'h/help'
        case 'htpasswd'
            __speedy_parse_subcommand 1 'cost=' 'h/help'
        case 'certificates'
            __speedy_parse_subcommand 0 'out=' 'host=+' 'h/help'
        case 'credentials'
            __speedy_parse_subcommand 0 'out=' 'operator-secret=' 'json' 'print-credential=' 'secret-file=' 'h/help'
        case 'help'
            __speedy_parse_subcommand -r 1 
        end
    end
end

function __speedy_tokens
    if test (string split -m 1 -f 1 -- . "$FISH_VERSION") -gt 3
        commandline --tokens-raw $argv
    else
        commandline -o $argv
    end
end

function __speedy_parse_subcommand -S -a positional_count
    argparse -s r -- $argv
    set -l option_specs $argv[2..]
    set -l is_repeating_positional $_flag_r
    set -el _flag_r
    set -a commands $unparsed_tokens[1]
    set positional_index 0
    while true
        set -e unparsed_tokens[1]
        argparse -sn "$commands" $option_specs -- $unparsed_tokens 2> /dev/null
        set unparsed_tokens $argv
        set positional_index (math $positional_index + 1)
        for non_repeating_flag_or_option in $non_repeating_flags_or_options
            if set -ql "_flag_$(string replace -a - _ -- $non_repeating_flag_or_option)"
                set non_repeating_flags_or_options_absent 1
                break
            end
        end
        test (count $unparsed_tokens) -eq 0 -o \( -z "$is_repeating_positional" -a "$positional_index" -gt "$positional_count" \) && break
    end
end

function __speedy_complete_directories
    set -l token (commandline -t)
    string match -- '*/' $token
    set -l subdirs $token*/
    printf %s\n $subdirs
end

function __speedy_custom_completion
    set -x SAP_SHELL fish
    set -x SAP_SHELL_VERSION $FISH_VERSION
    set -l tokens (__speedy_tokens -p)
    if test -z "$(__speedy_tokens -t)"
        set -l index (count (__speedy_tokens -pc))
        set tokens $tokens[..$index] \'\' $tokens[(math $index + 1)..]
    end
    command $tokens[1] $argv $tokens
end

complete -c 'speedy' -f
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'speedy' -n '__speedy_should_offer_completions_for_positional "speedy" -eq 1' -fa 'up' -d 'Start a local cluster: master, GROUPS groups of REPLICAS chunkservers, metaserver, imageserver.'
complete -c 'speedy' -n '__speedy_should_offer_completions_for_positional "speedy" -eq 1' -fa 'chunkmaster' -d 'Run the chunkmaster: cluster map, heartbeats, file id leases, group health.'
complete -c 'speedy' -n '__speedy_should_offer_completions_for_positional "speedy" -eq 1' -fa 'chunkserver' -d 'Run a chunkserver: store one group\'s chunks in preallocated volume files.'
complete -c 'speedy' -n '__speedy_should_offer_completions_for_positional "speedy" -eq 1' -fa 'metaserver' -d 'Run the metaserver: blobs, manifests, tags and upload sessions (SQLite, or PostgreSQL).'
complete -c 'speedy' -n '__speedy_should_offer_completions_for_positional "speedy" -eq 1' -fa 'imageserver' -d 'Run an imageserver: the OCI Distribution API that docker, podman and skopeo push to and pull from.'
complete -c 'speedy' -n '__speedy_should_offer_completions_for_positional "speedy" -eq 1' -fa 'peer' -d 'Run the node agent: a pull-only registry mirror for this host that reads blobs straight from the chunkservers.'
complete -c 'speedy' -n '__speedy_should_offer_completions_for_positional "speedy" -eq 1' -fa 'tracker' -d 'Run the tracker: node agents announce the chunks they hold and ask who holds a blob\'s chunks.'
complete -c 'speedy' -n '__speedy_should_offer_completions_for_positional "speedy" -eq 1' -fa 'htpasswd' -d 'Print an htpasswd line (bcrypt) for a registry user.'
complete -c 'speedy' -n '__speedy_should_offer_completions_for_positional "speedy" -eq 1' -fa 'certificates' -d 'Make a private CA and a server certificate for the cluster\'s TLS (P-256).'
complete -c 'speedy' -n '__speedy_should_offer_completions_for_positional "speedy" -eq 1' -fa 'credentials' -d 'Make a secret for each role of the cluster and the role table that lists them.'
complete -c 'speedy' -n '__speedy_should_offer_completions_for_positional "speedy" -eq 1' -fa 'help' -d 'Show subcommand help information.'
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy up" data' -l 'data' -d 'Directory for all the cluster\'s data.' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy up" groups' -l 'groups' -d 'Number of chunkserver groups.' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy up" replicas' -l 'replicas' -d 'Chunkservers per group (every chunk is written to each).' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy up" master-port' -l 'master-port' -d 'Port of the chunkmaster.' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy up" chunkserver-port' -l 'chunkserver-port' -d 'Port of the first chunkserver; the others follow.' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy up" meta-port' -l 'meta-port' -d 'Port of the metaserver.' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy up" registry-port' -l 'registry-port' -d 'Port of the imageserver (the registry clients push to).' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy up" volume-size' -l 'volume-size' -d 'Size of each chunkserver\'s volume files.' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy up" reserve' -l 'reserve' -d 'Free space each chunkserver keeps in reserve.' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy up" compact-every' -l 'compact-every' -d 'How often each chunkserver looks for volumes to compact (0: only when asked).' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy up" gc-every' -l 'gc-every' -d 'Collect garbage in the background this often (e.g. 1h), compacting volumes after; off unless given (`chunktool gc` runs it by hand).' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy up" auth' -l 'auth' -d 'Require logins on the registry: makes the user admin with a generated password (printed, and kept in DATA/admin-password); anonymous users get nothing.'
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy up" tls' -l 'tls' -d 'Serve the registry over HTTPS with a CA made for this cluster (DATA/tls/ca.crt; skopeo --dest-cert-dir DATA/tls).'
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy up" retention' -l 'retention' -d 'Retention rules for the metaserver (docs/gc.md, "Retention"); applied before each --gc-every collection and by `chunktool retention`.' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy up" sync' -l 'sync' -d 'Sync jobs for the metaserver (docs/registry.md, "Replication"): copies between registries, on a schedule.' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy up"' -l 'upstream' -d 'Cache an upstream registry: PREFIX/NAME pulls NAME from URL on a miss, e.g. hub=https://registry-1.docker.io (repeat for several). Pushes under PREFIX are refused.' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy up"' -l 'upstream-credentials' -d 'The login for an upstream: a file whose first line is USER:PASSWORD (never on the command line), e.g. hub=/etc/speedy/hub-login.' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy up"' -l 'upstream-ca' -d 'The PEM CA an upstream\'s certificate is signed by (default: the system\'s roots).' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy up" upstream-tag-ttl' -l 'upstream-tag-ttl' -d 'How long a cached tag is served before it is checked against its upstream again, e.g. 5m.' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy up" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy chunkmaster" listen' -l 'listen' -d 'Address to listen on, HOST:PORT.' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy chunkmaster" data' -l 'data' -d 'Directory for the master\'s SQLite database (unused with --database).' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy chunkmaster" database' -l 'database' -d 'A PostgreSQL database to keep the cluster state in instead, shared by every master given it: postgresql://USER@HOST:PORT/DB[?sslmode=require&pool=20]. The password comes from $PGPASSWORD (or the URL).' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy chunkmaster" lease-ttl' -l 'lease-ttl' -d 'Seconds the leader lease lasts without renewal (with --database); a standby takes over about this long after the leader dies.' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy chunkmaster" down-after' -l 'down-after' -d 'Seconds without a heartbeat before a chunkserver counts as down.' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy chunkmaster" advertise' -l 'advertise' -d 'Address clients reach this master at, HOST:PORT, shown in `chunktool status` and the console, and given to clients by standbys (default: --listen).' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy chunkmaster" auto-repair' -l 'auto-repair' -d 'Repair damaged chunks by copying a good copy from another member of the group (the leader does).'
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy chunkmaster" no-auto-repair' -l 'no-auto-repair' -d 'Repair damaged chunks by copying a good copy from another member of the group (the leader does).'
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy chunkmaster" compare-every' -l 'compare-every' -d 'With auto-repair, compare each group\'s members this often (range digests: a few requests when they agree) and copy back the chunks one misses (0: never).' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy chunkmaster" recovery-rate' -l 'recovery-rate' -d 'Bytes per second repairs and spare fills copy at most, so clients keep the bandwidth (default: no limit).' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy chunkmaster" replace-after' -l 'replace-after' -d 'Replace a chunkserver DOWN this long with a spare (speedy chunkserver --spare), filled from the rest of its group (0: never).' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy chunkmaster" allow-same-zone' -l 'allow-same-zone' -d 'Let members of one group share a failure zone (chunkserver --zone, else its host): a cluster on one machine, a test.'
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy chunkmaster" cluster-secret-file' -l 'cluster-secret-file' -d 'File holding the cluster secret every internal API asks for (default: $SPEEDY_CLUSTER_SECRET_FILE). `speedy up` makes one in its data directory. While rotating it holds two, one per line: the first is sent, both are accepted. SIGHUP re-reads it.' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy chunkmaster" role-table' -l 'role-table' -d 'Role table (default: $SPEEDY_ROLE_TABLE): each role holds a secret of its own, --cluster-secret-file holds this role\'s, and the port lets each caller do only what its role may (docs/security.md, "Roles"). `speedy credentials` makes the secrets and the table. SIGHUP re-reads it.' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy chunkmaster" insecure' -l 'insecure' -d 'Run without a cluster secret: anyone who can reach the port can change the cluster. For experiments only.'
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy chunkmaster" tls-cert' -l 'tls-cert' -d 'PEM certificate chain: serve this role\'s API over TLS. SIGHUP re-reads it and --tls-key for new connections.' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy chunkmaster" tls-key' -l 'tls-key' -d 'PEM private key of --tls-cert.' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy chunkmaster" ca' -l 'ca' -d 'PEM file of a private CA to trust for the cluster\'s TLS peers.' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy chunkmaster" tls-min-version' -l 'tls-min-version' -d 'Oldest TLS version the port accepts with --tls-cert: 1.2 or 1.3.' -rfka '1.2 1.3'
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy chunkmaster" max-connections-per-client' -l 'max-connections-per-client' -d 'Connections one client (its IPv4 address, or IPv6 /64) may hold open on this port at once; one more is closed as it connects. 0: no cap. (default: 256 on the imageserver; 1024 on the internal roles, whose callers pool connections)' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy chunkmaster" header-timeout' -l 'header-timeout' -d 'How long a request head may take from its first byte (the first request\'s from connecting, TLS handshake included): a client that trickles header bytes is answered 408 and closed.' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy chunkmaster" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy chunkserver" master' -l 'master' -d 'Base URL of the chunkmaster (default: $SPEEDY_MASTER, else http://127.0.0.1:8099).' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy chunkserver" group' -l 'group' -d 'The group this chunkserver belongs to (1 or more).' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy chunkserver" spare' -l 'spare' -d 'Join as a spare: no group until the master gives it one, to replace a member that stays down (see chunkmaster --replace-after).'
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy chunkserver" listen' -l 'listen' -d 'Address to listen on, HOST:PORT.' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy chunkserver" advertise' -l 'advertise' -d 'Address the master and clients reach this server at, HOST:PORT (default: --listen; needed when listening on 0.0.0.0).' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy chunkserver" zone' -l 'zone' -d 'The failure zone this server is in (a host, rack or room): letters, digits, \'.\', \'_\', \'-\', at most 63 (default: the host of --advertise).' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy chunkserver" data' -l 'data' -d 'Data directory (volume files, index checkpoint, server id).' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy chunkserver" id' -l 'id' -d 'Server id to use (default: the one in DATA/server-id, made on first start).' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy chunkserver" volume-size' -l 'volume-size' -d 'Size of each preallocated volume file.' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy chunkserver" max-chunk' -l 'max-chunk' -d 'Largest chunk accepted.' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy chunkserver" reserve' -l 'reserve' -d 'Free space kept in reserve; below it the server is read-only.' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy chunkserver" capacity' -l 'capacity' -d 'Cap on usable space (default: the filesystem\'s size).' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy chunkserver" heartbeat-interval' -l 'heartbeat-interval' -d 'Seconds between heartbeats.' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy chunkserver" compact-threshold' -l 'compact-threshold' -d 'Compact a sealed volume once its live chunks fill less than this fraction of it.' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy chunkserver" compact-rate' -l 'compact-rate' -d 'Bytes per second a compaction copies at most, so pulls keep their speed (0: no limit).' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy chunkserver" compact-every' -l 'compact-every' -d 'How often to look for volumes to compact (0: only when asked, by `chunktool gc --compact`).' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy chunkserver" scrub-rate' -l 'scrub-rate' -d 'Bytes per second the background scrub reads at most, a quarter of it while clients use the disk (0: no scrubbing).' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy chunkserver" scrub-every' -l 'scrub-every' -d 'Start a scrub pass (read every chunk, check its CRC) this long after the last one started; a pass that would take longer speeds up.' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy chunkserver" cluster-secret-file' -l 'cluster-secret-file' -d 'File holding the cluster secret every internal API asks for (default: $SPEEDY_CLUSTER_SECRET_FILE). `speedy up` makes one in its data directory. While rotating it holds two, one per line: the first is sent, both are accepted. SIGHUP re-reads it.' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy chunkserver" role-table' -l 'role-table' -d 'Role table (default: $SPEEDY_ROLE_TABLE): each role holds a secret of its own, --cluster-secret-file holds this role\'s, and the port lets each caller do only what its role may (docs/security.md, "Roles"). `speedy credentials` makes the secrets and the table. SIGHUP re-reads it.' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy chunkserver" insecure' -l 'insecure' -d 'Run without a cluster secret: anyone who can reach the port can change the cluster. For experiments only.'
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy chunkserver" tls-cert' -l 'tls-cert' -d 'PEM certificate chain: serve this role\'s API over TLS. SIGHUP re-reads it and --tls-key for new connections.' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy chunkserver" tls-key' -l 'tls-key' -d 'PEM private key of --tls-cert.' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy chunkserver" ca' -l 'ca' -d 'PEM file of a private CA to trust for the cluster\'s TLS peers.' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy chunkserver" tls-min-version' -l 'tls-min-version' -d 'Oldest TLS version the port accepts with --tls-cert: 1.2 or 1.3.' -rfka '1.2 1.3'
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy chunkserver" max-connections-per-client' -l 'max-connections-per-client' -d 'Connections one client (its IPv4 address, or IPv6 /64) may hold open on this port at once; one more is closed as it connects. 0: no cap. (default: 256 on the imageserver; 1024 on the internal roles, whose callers pool connections)' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy chunkserver" header-timeout' -l 'header-timeout' -d 'How long a request head may take from its first byte (the first request\'s from connecting, TLS handshake included): a client that trickles header bytes is answered 408 and closed.' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy chunkserver" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy metaserver" listen' -l 'listen' -d 'Address to listen on, HOST:PORT.' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy metaserver" data' -l 'data' -d 'Directory for the metaserver\'s SQLite database (unused with --database).' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy metaserver" database' -l 'database' -d 'A PostgreSQL database to keep the metadata in instead, shared by every metaserver given it: postgresql://USER@HOST:PORT/DB[?sslmode=require&pool=20]. The password comes from $PGPASSWORD (or the URL).' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy metaserver" gc-every' -l 'gc-every' -d 'Collect garbage this often in the background, e.g. 6h (0: never; `chunktool gc` runs it by hand).' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy metaserver" gc-grace' -l 'gc-grace' -d 'Keep manifests and blobs referenced more recently than this.' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy metaserver" gc-chunk-grace' -l 'gc-chunk-grace' -d 'Delete unreferenced chunks only once held this long; more than the imageservers\' --hold-deadline (default: --gc-grace, at least 10m).' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy metaserver" gc-compact' -l 'gc-compact' -d 'After each background collection, have the chunkservers compact their volumes.'
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy metaserver" master' -l 'master' -d 'Base URL of the chunkmaster: the metaserver heartbeats to it, and background collection reads its map (default: $SPEEDY_MASTER; without either, no heartbeats).' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy metaserver" id' -l 'id' -d 'The id this metaserver reports to the master (default: metaserver@HOST:PORT).' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy metaserver" retention' -l 'retention' -d 'Retention rules: lines `PATTERN keep-newest=N keep-recent=30d keep-tags=GLOB,…` (docs/gc.md); background collection applies them before it sweeps, `chunktool retention` by hand. SIGHUP re-reads it.' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy metaserver" sync' -l 'sync' -d 'Sync jobs: `sync NAME every=1h`, `from URL`, `to URL`, `rule SRC[:TAGS] -> DEST` lines (docs/registry.md, "Replication"), run one at a time on their schedule, each reported to the master as a job. Give it to one metaserver of those sharing a database. SIGHUP re-reads it.' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy metaserver" cluster-secret-file' -l 'cluster-secret-file' -d 'File holding the cluster secret every internal API asks for (default: $SPEEDY_CLUSTER_SECRET_FILE). `speedy up` makes one in its data directory. While rotating it holds two, one per line: the first is sent, both are accepted. SIGHUP re-reads it.' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy metaserver" role-table' -l 'role-table' -d 'Role table (default: $SPEEDY_ROLE_TABLE): each role holds a secret of its own, --cluster-secret-file holds this role\'s, and the port lets each caller do only what its role may (docs/security.md, "Roles"). `speedy credentials` makes the secrets and the table. SIGHUP re-reads it.' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy metaserver" insecure' -l 'insecure' -d 'Run without a cluster secret: anyone who can reach the port can change the cluster. For experiments only.'
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy metaserver" tls-cert' -l 'tls-cert' -d 'PEM certificate chain: serve this role\'s API over TLS. SIGHUP re-reads it and --tls-key for new connections.' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy metaserver" tls-key' -l 'tls-key' -d 'PEM private key of --tls-cert.' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy metaserver" ca' -l 'ca' -d 'PEM file of a private CA to trust for the cluster\'s TLS peers.' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy metaserver" tls-min-version' -l 'tls-min-version' -d 'Oldest TLS version the port accepts with --tls-cert: 1.2 or 1.3.' -rfka '1.2 1.3'
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy metaserver" max-connections-per-client' -l 'max-connections-per-client' -d 'Connections one client (its IPv4 address, or IPv6 /64) may hold open on this port at once; one more is closed as it connects. 0: no cap. (default: 256 on the imageserver; 1024 on the internal roles, whose callers pool connections)' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy metaserver" header-timeout' -l 'header-timeout' -d 'How long a request head may take from its first byte (the first request\'s from connecting, TLS handshake included): a client that trickles header bytes is answered 408 and closed.' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy metaserver" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy imageserver" listen' -l 'listen' -d 'Address to listen on, HOST:PORT.' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy imageserver" master' -l 'master' -d 'Base URL of the chunkmaster (default: $SPEEDY_MASTER, else http://127.0.0.1:8099).' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy imageserver" meta' -l 'meta' -d 'Base URL of the metaserver, or of several that share one database: URL,URL (calls move on to the next when one does not answer).' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy imageserver" chunk-size' -l 'chunk-size' -d 'Size of the chunks blobs are cut into.' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy imageserver" memory-budget' -l 'memory-budget' -d 'Chunk bytes held in memory at once across all requests.' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy imageserver" memory-per-client' -l 'memory-per-client' -d 'Budget bytes one client (address, or user once logged in) may hold at once (default: half the budget).' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy imageserver" memory-wait' -l 'memory-wait' -d 'Seconds a request waits for budget before it is answered 503 with Retry-After.' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy imageserver" client-idle-timeout' -l 'client-idle-timeout' -d 'Seconds a client may send or take nothing mid-request before its connection is closed and its buffers freed.' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy imageserver" htpasswd' -l 'htpasswd' -d 'htpasswd file of the registry\'s users (bcrypt: `htpasswd -B`); turns logins on. SIGHUP re-reads it.' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy imageserver" access' -l 'access' -d 'Access file: lines `WHO PATTERN ACTIONS` (see docs/security.md); turns logins on. SIGHUP re-reads it.' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy imageserver" token-key-file' -l 'token-key-file' -d 'File with the key registry tokens are signed with; give every imageserver of a cluster the same one. While rotating it holds two, one per line: the first signs, both are accepted. SIGHUP re-reads it.' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy imageserver" token-realm' -l 'token-realm' -d 'URL of the token endpoint sent in challenges (default: /token on the host the client used).' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy imageserver" token-lifetime' -l 'token-lifetime' -d 'Seconds an issued token is good for.' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy imageserver" rate-limit' -l 'rate-limit' -d 'Requests a second one client address may make, bursts of twice that (0: no limit).' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy imageserver" upload-expiry' -l 'upload-expiry' -d 'Hours an upload session may go without a request before it is ended and its chunks deleted.' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy imageserver" hold-deadline' -l 'hold-deadline' -d 'A pushed chunk not recorded in the metadata within this long fails its push; garbage collection\'s --chunk-grace must be longer (e.g. 60s).' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy imageserver" ticket-lifetime' -l 'ticket-lifetime' -d 'How long the chunk tickets in a chunk map (for `speedy peer`) let their holder read each chunk, e.g. 10m.' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy imageserver" id' -l 'id' -d 'The id this imageserver reports to the master (default: imageserver@HOST:PORT).' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy imageserver" pull-record-interval' -l 'pull-record-interval' -d 'How often the tags pulled since the last time are sent to the metaserver, for retention\'s keep-recent, e.g. 30s.' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy imageserver" uploads-per-repository' -l 'uploads-per-repository' -d 'Upload sessions open at once per repository.' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy imageserver" uploads-per-client' -l 'uploads-per-client' -d 'Upload sessions open at once per client (address, or user once logged in).' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy imageserver"' -l 'trusted-proxy' -d 'A load balancer or proxy in front of the registry (CIDR or address; repeat for several): for requests from it, limits and logs use the client address its --trusted-proxy-header names, and --max-connections-per-client does not apply to it. The header is ignored from anyone else.' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy imageserver" trusted-proxy-header' -l 'trusted-proxy-header' -d 'The header the trusted proxies set: x-forwarded-for or forwarded (RFC 7239). Only this one is read.' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy imageserver" audit-log' -l 'audit-log' -d 'Append a JSON line for every push, delete, failed login and refused request to this file (- for standard error); SIGHUP reopens it.' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy imageserver"' -l 'upstream' -d 'Cache an upstream registry: PREFIX/NAME pulls NAME from URL on a miss, e.g. hub=https://registry-1.docker.io (repeat for several). Pushes under PREFIX are refused.' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy imageserver"' -l 'upstream-credentials' -d 'The login for an upstream: a file whose first line is USER:PASSWORD (never on the command line), e.g. hub=/etc/speedy/hub-login.' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy imageserver"' -l 'upstream-ca' -d 'The PEM CA an upstream\'s certificate is signed by (default: the system\'s roots).' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy imageserver" upstream-tag-ttl' -l 'upstream-tag-ttl' -d 'How long a cached tag is served before it is checked against its upstream again, e.g. 5m.' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy imageserver" cluster-secret-file' -l 'cluster-secret-file' -d 'File holding the cluster secret every internal API asks for (default: $SPEEDY_CLUSTER_SECRET_FILE). `speedy up` makes one in its data directory. While rotating it holds two, one per line: the first is sent, both are accepted. SIGHUP re-reads it.' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy imageserver" role-table' -l 'role-table' -d 'Role table (default: $SPEEDY_ROLE_TABLE): each role holds a secret of its own, --cluster-secret-file holds this role\'s, and the port lets each caller do only what its role may (docs/security.md, "Roles"). `speedy credentials` makes the secrets and the table. SIGHUP re-reads it.' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy imageserver" insecure' -l 'insecure' -d 'Run without a cluster secret: anyone who can reach the port can change the cluster. For experiments only.'
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy imageserver" tls-cert' -l 'tls-cert' -d 'PEM certificate chain: serve this role\'s API over TLS. SIGHUP re-reads it and --tls-key for new connections.' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy imageserver" tls-key' -l 'tls-key' -d 'PEM private key of --tls-cert.' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy imageserver" ca' -l 'ca' -d 'PEM file of a private CA to trust for the cluster\'s TLS peers.' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy imageserver" tls-min-version' -l 'tls-min-version' -d 'Oldest TLS version the port accepts with --tls-cert: 1.2 or 1.3.' -rfka '1.2 1.3'
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy imageserver" max-connections-per-client' -l 'max-connections-per-client' -d 'Connections one client (its IPv4 address, or IPv6 /64) may hold open on this port at once; one more is closed as it connects. 0: no cap. (default: 256 on the imageserver; 1024 on the internal roles, whose callers pool connections)' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy imageserver" header-timeout' -l 'header-timeout' -d 'How long a request head may take from its first byte (the first request\'s from connecting, TLS handshake included): a client that trickles header bytes is answered 408 and closed.' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy imageserver" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy peer" listen' -l 'listen' -d 'Address to listen on, HOST:PORT (keep it on loopback: the agent serves this host).' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy peer" registry' -l 'registry' -d 'Base URL of the registry (an imageserver), e.g. https://registry.example:6788.' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy peer" cache' -l 'cache' -d 'Directory of the blob cache; it survives restarts.' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy peer" cache-size' -l 'cache-size' -d 'Most bytes the cache keeps; the least recently used blobs go first.' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy peer" ca' -l 'ca' -d 'PEM file of the CA trusted for the registry\'s and the chunkservers\' TLS (default: the system\'s roots).' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy peer" chunk-window' -l 'chunk-window' -d 'Chunks read ahead of the one being sent.' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy peer" chunk-timeout' -l 'chunk-timeout' -d 'How long a chunkserver or peer may take to start answering a chunk request, or stall mid-chunk, before the next source is tried.' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy peer" client-idle-timeout' -l 'client-idle-timeout' -d 'How long a client may send or take next to nothing (under 16 KiB) mid-request, or leave a request half sent, before its connection is closed.' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy peer" tracker' -l 'tracker' -d 'Base URL of the tracker (speedy tracker) that joins this agent to the swarm.' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy peer" peer-listen' -l 'peer-listen' -d 'Address other agents read chunks from, HOST:PORT (needs --tracker).' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy peer" peer-advertise' -l 'peer-advertise' -d 'URL announced to other agents for --peer-listen (default: http://HOST:PORT of --peer-listen).' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy peer" peer-secret-file' -l 'peer-secret-file' -d 'File holding the peer secret shared by the tracker and every agent of the swarm.' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy peer" upload-rate' -l 'upload-rate' -d 'Most bytes a second sent to other agents, e.g. 50M (default: no bound).' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy peer" blobs-from-registry' -l 'blobs-from-registry' -d 'Read blobs through the registry\'s blob GET instead of from the chunkservers (a host that cannot reach them); still cached and checked.'
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy peer" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy tracker" listen' -l 'listen' -d 'Address to listen on, HOST:PORT.' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy tracker" peer-secret-file' -l 'peer-secret-file' -d 'File holding the peer secret every agent signs its requests with (at least 16 printable characters; 32 random bytes in hex are best).' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy tracker" announce-interval' -l 'announce-interval' -d 'How often agents send a full announce; an agent silent for three intervals is forgotten.' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy tracker" master' -l 'master' -d 'Base URL of the chunkmaster to heartbeat to, with the swarm\'s figures (default: $SPEEDY_MASTER; without either, no heartbeats).' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy tracker" id' -l 'id' -d 'The id this tracker reports to the master (default: tracker@HOST:PORT).' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy tracker" cluster-secret-file' -l 'cluster-secret-file' -d 'File holding the cluster secret every internal API asks for (default: $SPEEDY_CLUSTER_SECRET_FILE). `speedy up` makes one in its data directory. While rotating it holds two, one per line: the first is sent, both are accepted. SIGHUP re-reads it.' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy tracker" role-table' -l 'role-table' -d 'Role table (default: $SPEEDY_ROLE_TABLE): each role holds a secret of its own, --cluster-secret-file holds this role\'s, and the port lets each caller do only what its role may (docs/security.md, "Roles"). `speedy credentials` makes the secrets and the table. SIGHUP re-reads it.' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy tracker" insecure' -l 'insecure' -d 'Run without a cluster secret: anyone who can reach the port can change the cluster. For experiments only.'
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy tracker" tls-cert' -l 'tls-cert' -d 'PEM certificate chain: serve this role\'s API over TLS. SIGHUP re-reads it and --tls-key for new connections.' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy tracker" tls-key' -l 'tls-key' -d 'PEM private key of --tls-cert.' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy tracker" ca' -l 'ca' -d 'PEM file of a private CA to trust for the cluster\'s TLS peers.' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy tracker" tls-min-version' -l 'tls-min-version' -d 'Oldest TLS version the port accepts with --tls-cert: 1.2 or 1.3.' -rfka '1.2 1.3'
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy tracker" max-connections-per-client' -l 'max-connections-per-client' -d 'Connections one client (its IPv4 address, or IPv6 /64) may hold open on this port at once; one more is closed as it connects. 0: no cap. (default: 256 on the imageserver; 1024 on the internal roles, whose callers pool connections)' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy tracker" header-timeout' -l 'header-timeout' -d 'How long a request head may take from its first byte (the first request\'s from connecting, TLS handshake included): a client that trickles header bytes is answered 408 and closed.' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy tracker" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy htpasswd" cost' -l 'cost' -d 'bcrypt cost: each step doubles the work of checking (and of guessing).' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy htpasswd" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy certificates" out' -l 'out' -d 'Directory to write to.' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy certificates"' -l 'host' -d 'A DNS name or IPv4 address the certificate is valid for (repeat).' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy certificates" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy credentials" out' -l 'out' -d 'Directory to write to.' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy credentials" operator-secret' -l 'operator-secret' -d 'The operator\'s secret file (default: DIR/operator.secret; `speedy up` keeps it in DATA/cluster-secret).' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy credentials" json' -l 'json' -d 'Print what was written as JSON.'
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy credentials" print-credential' -l 'print-credential' -d 'Print, instead, the credential the secret in --secret-file sends ports of this kind (chunkmaster, metaserver, chunkserver, imageserver, tracker), for curl or Prometheus; nothing is written.' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy credentials" secret-file' -l 'secret-file' -d 'The secret file --print-credential reads (default: the operator\'s).' -rfka ''
complete -c 'speedy' -n '__speedy_should_offer_completions_for_flags_or_options "speedy credentials" h help' -s 'h' -l 'help' -d 'Show help information.'
