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
            __chunktool_parse_subcommand 0 'master=' 'json' 'h/help'
        case 'verify'
            __chunktool_parse_subcommand 0 'master=' 'group=' 'rate=' 'listings-only' 'json' 'h/help'
        case 'repair'
            __chunktool_parse_subcommand 0 'master=' 'group=' 'dry-run' 'json' 'h/help'
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
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_positional "chunktool" -eq 1' -fa 'status' -d 'Show every group, its state and its members\' disks and traffic.'
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_positional "chunktool" -eq 1' -fa 'verify' -d 'Compare a group\'s replicas and read every chunk to check its CRC.'
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_positional "chunktool" -eq 1' -fa 'repair' -d 'Copy each missing or corrupt chunk of a group from a member whose copy verifies.'
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_positional "chunktool" -eq 1' -fa 'help' -d 'Show subcommand help information.'
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool status" master' -l 'master' -d 'Base URL of the chunkmaster (default: $SPEEDY_MASTER, else http://127.0.0.1:8099).' -rfka ''
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool status" json' -l 'json' -d 'Print the cluster snapshot as JSON.'
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool status" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool verify" master' -l 'master' -d 'Base URL of the chunkmaster (default: $SPEEDY_MASTER, else http://127.0.0.1:8099).' -rfka ''
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool verify" group' -l 'group' -d 'The group to verify.' -rfka ''
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool verify" rate' -l 'rate' -d 'Read at most this many MB/s per member (0: no limit), to spare a live cluster.' -rfka ''
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool verify" listings-only' -l 'listings-only' -d 'Compare listings only; do not read the chunks.'
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool verify" json' -l 'json' -d 'Print the report as JSON.'
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool verify" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool repair" master' -l 'master' -d 'Base URL of the chunkmaster (default: $SPEEDY_MASTER, else http://127.0.0.1:8099).' -rfka ''
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool repair" group' -l 'group' -d 'The group to repair.' -rfka ''
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool repair" dry-run' -l 'dry-run' -d 'Say what would be copied, and change nothing.'
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool repair" json' -l 'json' -d 'Print the result as JSON.'
complete -c 'chunktool' -n '__chunktool_should_offer_completions_for_flags_or_options "chunktool repair" h help' -s 'h' -l 'help' -d 'Show help information.'
