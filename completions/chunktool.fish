function __chunktool_should_offer_completions_for_flags_or_options -a expected_commands
    set -l non_repeating_flags_or_options $argv[2..]
    set -l non_repeating_flags_or_options_absent 0
    set -l positional_index 0
    set -l commands
    __chunktool_parse_tokens
    test "$commands" = "$expected_commands"; and return $non_repeating_flags_or_options_absent
end

function __chunktool_should_offer_completions_for_positional -a expected_commands positional_index_comparison expected_positional_index
    set -l non_repeating_flags_or_options
    set -l non_repeating_flags_or_options_absent 0
    set -l positional_index 0
    set -l commands
    __chunktool_parse_tokens
    test "$commands" = "$expected_commands" -a \( "$positional_index" "$positional_index_comparison" "$expected_positional_index" \)
end

function __chunktool_parse_tokens -S
    set -l unparsed_tokens (__chunktool_tokens -pc)
    switch $unparsed_tokens[1]
    case 'chunktool'
        __chunktool_parse_subcommand 0 'h/help'
        switch $unparsed_tokens[1]
        case 'status'
            __chunktool_parse_subcommand 0 'master=' 'cluster-secret-file=' 'ca=' 'json' 'h/help'
        case 'group'
            __chunktool_parse_subcommand 0 'h/help'
            switch $unparsed_tokens[1]
            case 'list'
                __chunktool_parse_subcommand 0 'master=' 'cluster-secret-file=' 'ca=' 'json' 'h/help'
            case 'add'
                __chunktool_parse_subcommand 1 'master=' 'cluster-secret-file=' 'ca=' 'json' 'h/help'
            case 'remove'
                __chunktool_parse_subcommand 1 'master=' 'cluster-secret-file=' 'ca=' 'h/help'
            case 'drain'
                __chunktool_parse_subcommand 1 'master=' 'cluster-secret-file=' 'ca=' 'meta=' 'rate=' 'concurrency=' 'settle=' 'wait-uploads=' 'json' 'h/help'
            case 'undrain'
                __chunktool_parse_subcommand 1 'master=' 'cluster-secret-file=' 'ca=' 'h/help'
            end
        case 'server'
            __chunktool_parse_subcommand 0 'h/help'
            switch $unparsed_tokens[1]
            case 'list'
                __chunktool_parse_subcommand 0 'master=' 'cluster-secret-file=' 'ca=' 'group=' 'json' 'h/help'
            case 'add'
                __chunktool_parse_subcommand 1 'master=' 'cluster-secret-file=' 'ca=' 'group=' 'zone=' 'status=' 'json' 'h/help'
            case 'remove'
                __chunktool_parse_subcommand 1 'master=' 'cluster-secret-file=' 'ca=' 'json' 'h/help'
            case 'set-status'
                __chunktool_parse_subcommand 2 'master=' 'cluster-secret-file=' 'ca=' 'json' 'h/help'
            end
        case 'verify'
            __chunktool_parse_subcommand 0 'master=' 'cluster-secret-file=' 'ca=' 'group=' 'server=' 'all' 'rate=' 'listings-only' 'quick' 'json' 'h/help'
        case 'repair'
            __chunktool_parse_subcommand 0 'master=' 'cluster-secret-file=' 'ca=' 'group=' 'dry-run' 'json' 'h/help'
        case 'fsck'
            __chunktool_parse_subcommand 0 'master=' 'cluster-secret-file=' 'ca=' 'meta=' 'deep' 'rate=' 'json' 'h/help'
        case 'gc'
            __chunktool_parse_subcommand 0 'master=' 'cluster-secret-file=' 'ca=' 'meta=' 'grace=' 'chunk-grace=' 'upload-expiry=' 'dry-run' 'compact' 'json' 'h/help'
        case 'retention'
            __chunktool_parse_subcommand 0 'master=' 'cluster-secret-file=' 'ca=' 'meta=' 'dry-run' 'json' 'h/help'
        case 'sync'
            __chunktool_parse_subcommand -r 1 'master=' 'cluster-secret-file=' 'ca=' 'from=' 'from-credentials=' 'from-ca=' 'to=' 'to-credentials=' 'to-ca=' 'rules=' 'delete' 'json' 'h/help'
        case 'rebalance'
            __chunktool_parse_subcommand 0 'master=' 'cluster-secret-file=' 'ca=' 'meta=' 'rate=' 'concurrency=' 'max-spread=' 'dry-run' 'json' 'h/help'
        case 'help'
            __chunktool_parse_subcommand -r 1 
        end
    end
end

function __chunktool_tokens
    if test (string split -m 1 -f 1 -- . "$FISH_VERSION") -gt 3
        commandline --tokens-raw $argv
    else
        commandline -o $argv
    end
end

function __chunktool_parse_subcommand -S -a positional_count
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

function __chunktool_complete_directories
    set -l token (commandline -t)
    string match -- '*/' $token
    set -l subdirs $token*/
    printf %s\n $subdirs
end

function __chunktool_custom_completion
    set -x SAP_SHELL fish
    set -x SAP_SHELL_VERSION $FISH_VERSION
    set -l tokens (__chunktool_tokens -p)
    if test -z "$(__chunktool_tokens -t)"
        set -l index (count (__chunktool_tokens -pc))
        set tokens $tokens[..$index] \'\' $tokens[(math $index + 1)..]
    end
    command $tokens[1] $argv $tokens
end

complete -c 'chunktool' -f
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_positional "chunktool" -eq 1' -fa 'status' -d 'Show every group, its state and its members\' disks, traffic and scrub, lost chunks and spares.'
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_positional "chunktool" -eq 1' -fa 'group' -d 'List groups, create one, drain one, or remove an empty one.'
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_positional "chunktool" -eq 1' -fa 'server' -d 'List, register, remove chunkservers or set their status.'
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_positional "chunktool" -eq 1' -fa 'verify' -d 'Compare a group\'s replicas and read every chunk to check its CRC.'
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_positional "chunktool" -eq 1' -fa 'repair' -d 'Copy each missing or corrupt chunk of a group from a member whose copy verifies.'
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_positional "chunktool" -eq 1' -fa 'fsck' -d 'Cross-check the metaserver against the chunkservers: lost data and garbage.'
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_positional "chunktool" -eq 1' -fa 'gc' -d 'Collect garbage now: untagged manifests, unreferenced blobs, their chunks, failed writes.'
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_positional "chunktool" -eq 1' -fa 'retention' -d 'Apply the metaserver\'s retention rules now, or list what they would remove (--dry-run).'
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_positional "chunktool" -eq 1' -fa 'sync' -d 'Copy repositories from one registry to another: into this cluster, or out of it.'
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_positional "chunktool" -eq 1' -fa 'rebalance' -d 'Move chunks from the fullest groups to the emptiest until their fill is within a spread.'
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_positional "chunktool" -eq 1' -fa 'help' -d 'Show subcommand help information.'
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool status" master' -l 'master' -d 'Base URL of the chunkmaster (default: $SPEEDY_MASTER, else http://127.0.0.1:8099).' -rfka ''
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool status" cluster-secret-file' -l 'cluster-secret-file' -d 'File holding the cluster secret, or the operator\'s with a role table (default: $SPEEDY_CLUSTER_SECRET_FILE, else ./speedy-data/cluster-secret when it exists). With a role table ($SPEEDY_ROLE_TABLE, or `roles` or `credentials/roles` beside the file) only credentials derived from it are sent.' -rfka ''
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool status" ca' -l 'ca' -d 'PEM file of the private CA that signed the cluster\'s TLS certificates.' -rfka ''
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool status" json' -l 'json' -d 'Print the cluster snapshot as JSON.'
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool status" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool group" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_positional "chunktool group" -eq 1' -fa 'list' -d 'List every group: state, members, free space and chunks.'
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_positional "chunktool group" -eq 1' -fa 'add' -d 'Create an empty group; chunkservers started with --group G then join it.'
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_positional "chunktool group" -eq 1' -fa 'remove' -d 'Remove a group that has no members, or a drained one whose members hold no chunk (they are removed with it).'
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_positional "chunktool group" -eq 1' -fa 'drain' -d 'Move every chunk of a group to other groups while the cluster serves, so the group can be removed.'
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_positional "chunktool group" -eq 1' -fa 'undrain' -d 'Let a draining group take new chunks again.'
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool group list" master' -l 'master' -d 'Base URL of the chunkmaster (default: $SPEEDY_MASTER, else http://127.0.0.1:8099).' -rfka ''
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool group list" cluster-secret-file' -l 'cluster-secret-file' -d 'File holding the cluster secret, or the operator\'s with a role table (default: $SPEEDY_CLUSTER_SECRET_FILE, else ./speedy-data/cluster-secret when it exists). With a role table ($SPEEDY_ROLE_TABLE, or `roles` or `credentials/roles` beside the file) only credentials derived from it are sent.' -rfka ''
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool group list" ca' -l 'ca' -d 'PEM file of the private CA that signed the cluster\'s TLS certificates.' -rfka ''
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool group list" json' -l 'json' -d 'Print the groups as JSON (the master\'s group snapshots).'
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool group list" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool group add" master' -l 'master' -d 'Base URL of the chunkmaster (default: $SPEEDY_MASTER, else http://127.0.0.1:8099).' -rfka ''
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool group add" cluster-secret-file' -l 'cluster-secret-file' -d 'File holding the cluster secret, or the operator\'s with a role table (default: $SPEEDY_CLUSTER_SECRET_FILE, else ./speedy-data/cluster-secret when it exists). With a role table ($SPEEDY_ROLE_TABLE, or `roles` or `credentials/roles` beside the file) only credentials derived from it are sent.' -rfka ''
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool group add" ca' -l 'ca' -d 'PEM file of the private CA that signed the cluster\'s TLS certificates.' -rfka ''
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool group add" json' -l 'json' -d 'Print the new group as JSON.'
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool group add" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool group remove" master' -l 'master' -d 'Base URL of the chunkmaster (default: $SPEEDY_MASTER, else http://127.0.0.1:8099).' -rfka ''
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool group remove" cluster-secret-file' -l 'cluster-secret-file' -d 'File holding the cluster secret, or the operator\'s with a role table (default: $SPEEDY_CLUSTER_SECRET_FILE, else ./speedy-data/cluster-secret when it exists). With a role table ($SPEEDY_ROLE_TABLE, or `roles` or `credentials/roles` beside the file) only credentials derived from it are sent.' -rfka ''
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool group remove" ca' -l 'ca' -d 'PEM file of the private CA that signed the cluster\'s TLS certificates.' -rfka ''
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool group remove" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool group drain" master' -l 'master' -d 'Base URL of the chunkmaster (default: $SPEEDY_MASTER, else http://127.0.0.1:8099).' -rfka ''
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool group drain" cluster-secret-file' -l 'cluster-secret-file' -d 'File holding the cluster secret, or the operator\'s with a role table (default: $SPEEDY_CLUSTER_SECRET_FILE, else ./speedy-data/cluster-secret when it exists). With a role table ($SPEEDY_ROLE_TABLE, or `roles` or `credentials/roles` beside the file) only credentials derived from it are sent.' -rfka ''
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool group drain" ca' -l 'ca' -d 'PEM file of the private CA that signed the cluster\'s TLS certificates.' -rfka ''
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool group drain" meta' -l 'meta' -d 'Base URL of the metaserver (default: $SPEEDY_META, else http://127.0.0.1:8100).' -rfka ''
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool group drain" rate' -l 'rate' -d 'Copy at most this many MB/s (0: as fast as the chunkservers go).' -rfka ''
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool group drain" concurrency' -l 'concurrency' -d 'Chunks moved at once.' -rfka ''
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool group drain" settle' -l 'settle' -d 'Declare the group empty only from a scan this long after the drain began: more than the imageservers\' --hold-deadline plus the 5 s a cluster map may be old.' -rfka ''
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool group drain" wait-uploads' -l 'wait-uploads' -d 'How long to wait for uploads in progress that hold chunks of the group.' -rfka ''
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool group drain" json' -l 'json' -d 'Print the report as JSON.'
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool group drain" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool group undrain" master' -l 'master' -d 'Base URL of the chunkmaster (default: $SPEEDY_MASTER, else http://127.0.0.1:8099).' -rfka ''
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool group undrain" cluster-secret-file' -l 'cluster-secret-file' -d 'File holding the cluster secret, or the operator\'s with a role table (default: $SPEEDY_CLUSTER_SECRET_FILE, else ./speedy-data/cluster-secret when it exists). With a role table ($SPEEDY_ROLE_TABLE, or `roles` or `credentials/roles` beside the file) only credentials derived from it are sent.' -rfka ''
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool group undrain" ca' -l 'ca' -d 'PEM file of the private CA that signed the cluster\'s TLS certificates.' -rfka ''
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool group undrain" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool server" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_positional "chunktool server" -eq 1' -fa 'list' -d 'List chunkservers with their group, status, chunks and last heartbeat; spares show group \'spare\'.'
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_positional "chunktool server" -eq 1' -fa 'add' -d 'Register a running chunkserver with the master.'
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_positional "chunktool server" -eq 1' -fa 'remove' -d 'Remove a DOWN or OFFLINE server from the cluster for good.'
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_positional "chunktool server" -eq 1' -fa 'set-status' -d 'Set a server RW, RO or OFFLINE (or TRANSFERRING) by operator\'s order.'
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool server list" master' -l 'master' -d 'Base URL of the chunkmaster (default: $SPEEDY_MASTER, else http://127.0.0.1:8099).' -rfka ''
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool server list" cluster-secret-file' -l 'cluster-secret-file' -d 'File holding the cluster secret, or the operator\'s with a role table (default: $SPEEDY_CLUSTER_SECRET_FILE, else ./speedy-data/cluster-secret when it exists). With a role table ($SPEEDY_ROLE_TABLE, or `roles` or `credentials/roles` beside the file) only credentials derived from it are sent.' -rfka ''
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool server list" ca' -l 'ca' -d 'PEM file of the private CA that signed the cluster\'s TLS certificates.' -rfka ''
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool server list" group' -l 'group' -d 'Only this group\'s servers.' -rfka ''
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool server list" json' -l 'json' -d 'Print the servers as JSON.'
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool server list" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool server add" master' -l 'master' -d 'Base URL of the chunkmaster (default: $SPEEDY_MASTER, else http://127.0.0.1:8099).' -rfka ''
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool server add" cluster-secret-file' -l 'cluster-secret-file' -d 'File holding the cluster secret, or the operator\'s with a role table (default: $SPEEDY_CLUSTER_SECRET_FILE, else ./speedy-data/cluster-secret when it exists). With a role table ($SPEEDY_ROLE_TABLE, or `roles` or `credentials/roles` beside the file) only credentials derived from it are sent.' -rfka ''
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool server add" ca' -l 'ca' -d 'PEM file of the private CA that signed the cluster\'s TLS certificates.' -rfka ''
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool server add" group' -l 'group' -d 'The group it must serve (checked against the chunkserver\'s own).' -rfka ''
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool server add" zone' -l 'zone' -d 'Its failure zone, when it was started without --zone (checked against the chunkserver\'s own otherwise).' -rfka ''
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool server add" status' -l 'status' -d 'rw or transferring (default: decided by the master: transferring when the server is empty and its group holds chunks).' -rfka ''
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool server add" json' -l 'json' -d 'Print the server id and its group as JSON.'
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool server add" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool server remove" master' -l 'master' -d 'Base URL of the chunkmaster (default: $SPEEDY_MASTER, else http://127.0.0.1:8099).' -rfka ''
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool server remove" cluster-secret-file' -l 'cluster-secret-file' -d 'File holding the cluster secret, or the operator\'s with a role table (default: $SPEEDY_CLUSTER_SECRET_FILE, else ./speedy-data/cluster-secret when it exists). With a role table ($SPEEDY_ROLE_TABLE, or `roles` or `credentials/roles` beside the file) only credentials derived from it are sent.' -rfka ''
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool server remove" ca' -l 'ca' -d 'PEM file of the private CA that signed the cluster\'s TLS certificates.' -rfka ''
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool server remove" json' -l 'json' -d 'Print its former group as JSON.'
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool server remove" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool server set-status" master' -l 'master' -d 'Base URL of the chunkmaster (default: $SPEEDY_MASTER, else http://127.0.0.1:8099).' -rfka ''
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool server set-status" cluster-secret-file' -l 'cluster-secret-file' -d 'File holding the cluster secret, or the operator\'s with a role table (default: $SPEEDY_CLUSTER_SECRET_FILE, else ./speedy-data/cluster-secret when it exists). With a role table ($SPEEDY_ROLE_TABLE, or `roles` or `credentials/roles` beside the file) only credentials derived from it are sent.' -rfka ''
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool server set-status" ca' -l 'ca' -d 'PEM file of the private CA that signed the cluster\'s TLS certificates.' -rfka ''
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool server set-status" json' -l 'json' -d 'Print its group as JSON.'
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool server set-status" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool verify" master' -l 'master' -d 'Base URL of the chunkmaster (default: $SPEEDY_MASTER, else http://127.0.0.1:8099).' -rfka ''
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool verify" cluster-secret-file' -l 'cluster-secret-file' -d 'File holding the cluster secret, or the operator\'s with a role table (default: $SPEEDY_CLUSTER_SECRET_FILE, else ./speedy-data/cluster-secret when it exists). With a role table ($SPEEDY_ROLE_TABLE, or `roles` or `credentials/roles` beside the file) only credentials derived from it are sent.' -rfka ''
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool verify" ca' -l 'ca' -d 'PEM file of the private CA that signed the cluster\'s TLS certificates.' -rfka ''
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool verify" group' -l 'group' -d 'The group to verify.' -rfka ''
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool verify" server' -l 'server' -d 'Verify only this server (by id) against the rest of its group.' -rfka ''
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool verify" all' -l 'all' -d 'Verify every group.'
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool verify" rate' -l 'rate' -d 'Read at most this many MB/s per member (0: no limit), to spare a live cluster.' -rfka ''
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool verify" listings-only' -l 'listings-only' -d 'Compare listings only; do not read the chunks.'
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool verify" quick' -l 'quick' -d 'Compare the members range by range and list only where they differ; read nothing.'
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool verify" json' -l 'json' -d 'Print the report as JSON.'
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool verify" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool repair" master' -l 'master' -d 'Base URL of the chunkmaster (default: $SPEEDY_MASTER, else http://127.0.0.1:8099).' -rfka ''
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool repair" cluster-secret-file' -l 'cluster-secret-file' -d 'File holding the cluster secret, or the operator\'s with a role table (default: $SPEEDY_CLUSTER_SECRET_FILE, else ./speedy-data/cluster-secret when it exists). With a role table ($SPEEDY_ROLE_TABLE, or `roles` or `credentials/roles` beside the file) only credentials derived from it are sent.' -rfka ''
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool repair" ca' -l 'ca' -d 'PEM file of the private CA that signed the cluster\'s TLS certificates.' -rfka ''
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool repair" group' -l 'group' -d 'The group to repair.' -rfka ''
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool repair" dry-run' -l 'dry-run' -d 'Say what would be copied, and change nothing.'
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool repair" json' -l 'json' -d 'Print the result as JSON.'
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool repair" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool fsck" master' -l 'master' -d 'Base URL of the chunkmaster (default: $SPEEDY_MASTER, else http://127.0.0.1:8099).' -rfka ''
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool fsck" cluster-secret-file' -l 'cluster-secret-file' -d 'File holding the cluster secret, or the operator\'s with a role table (default: $SPEEDY_CLUSTER_SECRET_FILE, else ./speedy-data/cluster-secret when it exists). With a role table ($SPEEDY_ROLE_TABLE, or `roles` or `credentials/roles` beside the file) only credentials derived from it are sent.' -rfka ''
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool fsck" ca' -l 'ca' -d 'PEM file of the private CA that signed the cluster\'s TLS certificates.' -rfka ''
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool fsck" meta' -l 'meta' -d 'Base URL of the metaserver (default: $SPEEDY_META, else http://127.0.0.1:8100).' -rfka ''
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool fsck" deep' -l 'deep' -d 'Read every referenced chunk (until one copy verifies), not just the listings.'
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool fsck" rate' -l 'rate' -d 'With --deep, read at most this many MB/s (0: no limit).' -rfka ''
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool fsck" json' -l 'json' -d 'Print the report as JSON.'
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool fsck" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool gc" master' -l 'master' -d 'Base URL of the chunkmaster (default: $SPEEDY_MASTER, else http://127.0.0.1:8099).' -rfka ''
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool gc" cluster-secret-file' -l 'cluster-secret-file' -d 'File holding the cluster secret, or the operator\'s with a role table (default: $SPEEDY_CLUSTER_SECRET_FILE, else ./speedy-data/cluster-secret when it exists). With a role table ($SPEEDY_ROLE_TABLE, or `roles` or `credentials/roles` beside the file) only credentials derived from it are sent.' -rfka ''
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool gc" ca' -l 'ca' -d 'PEM file of the private CA that signed the cluster\'s TLS certificates.' -rfka ''
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool gc" meta' -l 'meta' -d 'Base URL of the metaserver (default: $SPEEDY_META, else http://127.0.0.1:8100).' -rfka ''
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool gc" grace' -l 'grace' -d 'Keep manifests and blobs referenced more recently than this (e.g. 30m, 1h, 7d).' -rfka ''
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool gc" chunk-grace' -l 'chunk-grace' -d 'Delete unreferenced chunks only once held this long; it must exceed the imageservers\' --hold-deadline (default: --grace, at least 10m).' -rfka ''
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool gc" upload-expiry' -l 'upload-expiry' -d 'End upload sessions idle this long and delete their chunks.' -rfka ''
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool gc" dry-run' -l 'dry-run' -d 'Report what would be deleted; delete nothing.'
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool gc" compact' -l 'compact' -d 'Afterwards, compact the chunkservers\' volumes that fall under their live threshold.'
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool gc" json' -l 'json' -d 'Print the report as JSON.'
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool gc" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool retention" master' -l 'master' -d 'Base URL of the chunkmaster (default: $SPEEDY_MASTER, else http://127.0.0.1:8099).' -rfka ''
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool retention" cluster-secret-file' -l 'cluster-secret-file' -d 'File holding the cluster secret, or the operator\'s with a role table (default: $SPEEDY_CLUSTER_SECRET_FILE, else ./speedy-data/cluster-secret when it exists). With a role table ($SPEEDY_ROLE_TABLE, or `roles` or `credentials/roles` beside the file) only credentials derived from it are sent.' -rfka ''
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool retention" ca' -l 'ca' -d 'PEM file of the private CA that signed the cluster\'s TLS certificates.' -rfka ''
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool retention" meta' -l 'meta' -d 'Base URL of the metaserver (default: $SPEEDY_META, else http://127.0.0.1:8100).' -rfka ''
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool retention" dry-run' -l 'dry-run' -d 'List what would be removed and why; remove nothing.'
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool retention" json' -l 'json' -d 'Print the report as JSON.'
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool retention" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool sync" master' -l 'master' -d 'Base URL of the chunkmaster (default: $SPEEDY_MASTER, else http://127.0.0.1:8099).' -rfka ''
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool sync" cluster-secret-file' -l 'cluster-secret-file' -d 'File holding the cluster secret, or the operator\'s with a role table (default: $SPEEDY_CLUSTER_SECRET_FILE, else ./speedy-data/cluster-secret when it exists). With a role table ($SPEEDY_ROLE_TABLE, or `roles` or `credentials/roles` beside the file) only credentials derived from it are sent.' -rfka ''
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool sync" ca' -l 'ca' -d 'PEM file of the private CA that signed the cluster\'s TLS certificates.' -rfka ''
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool sync" from' -l 'from' -d 'Base URL of the registry to copy from, e.g. https://registry.example:5000.' -rfka ''
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool sync" from-credentials' -l 'from-credentials' -d 'Login for --from: a file whose first line is USER:PASSWORD.' -rfka ''
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool sync" from-ca' -l 'from-ca' -d 'The PEM CA of --from\'s certificate (default: the system\'s roots).' -rfka ''
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool sync" to' -l 'to' -d 'Base URL of the registry to copy to (this cluster\'s imageserver, or another).' -rfka ''
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool sync" to-credentials' -l 'to-credentials' -d 'Login for --to: a file whose first line is USER:PASSWORD.' -rfka ''
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool sync" to-ca' -l 'to-ca' -d 'The PEM CA of --to\'s certificate (default: the system\'s roots).' -rfka ''
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool sync" rules' -l 'rules' -d 'A file of rules, one per line (# comments), besides those given as arguments.' -rfka ''
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool sync" delete' -l 'delete' -d 'Delete destination tags that the rules cover and the source no longer has.'
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool sync" json' -l 'json' -d 'Print the report as JSON.'
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool sync" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool rebalance" master' -l 'master' -d 'Base URL of the chunkmaster (default: $SPEEDY_MASTER, else http://127.0.0.1:8099).' -rfka ''
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool rebalance" cluster-secret-file' -l 'cluster-secret-file' -d 'File holding the cluster secret, or the operator\'s with a role table (default: $SPEEDY_CLUSTER_SECRET_FILE, else ./speedy-data/cluster-secret when it exists). With a role table ($SPEEDY_ROLE_TABLE, or `roles` or `credentials/roles` beside the file) only credentials derived from it are sent.' -rfka ''
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool rebalance" ca' -l 'ca' -d 'PEM file of the private CA that signed the cluster\'s TLS certificates.' -rfka ''
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool rebalance" meta' -l 'meta' -d 'Base URL of the metaserver (default: $SPEEDY_META, else http://127.0.0.1:8100).' -rfka ''
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool rebalance" rate' -l 'rate' -d 'Copy at most this many MB/s (0: as fast as the chunkservers go).' -rfka ''
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool rebalance" concurrency' -l 'concurrency' -d 'Chunks moved at once.' -rfka ''
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool rebalance" max-spread' -l 'max-spread' -d 'The spread to reach, as a percentage (10%) of the fullest group\'s fill.' -rfka ''
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool rebalance" dry-run' -l 'dry-run' -d 'Say what would move, and move nothing.'
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool rebalance" json' -l 'json' -d 'Print the report as JSON.'
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool rebalance" h help' -s 'h' -l 'help' -d 'Show help information.'
