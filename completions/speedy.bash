#!/bin/bash

__speedy_cursor_index_in_current_word() {
    local remaining="${COMP_LINE}"

    local word
    for word in "${COMP_WORDS[@]::COMP_CWORD}"; do
        remaining="${remaining##*([[:space:]])"${word}"*([[:space:]])}"
    done

    local -ir index="$((COMP_POINT - ${#COMP_LINE} + ${#remaining}))"
    if [[ "${index}" -le 0 ]]; then
        printf 0
    else
        printf %s "${index}"
    fi
}

# positional arguments:
#
# - 1: the current (sub)command's count of positional arguments
#
# required variables:
#
# - repeating_flags: the repeating flags that the current (sub)command can accept
# - non_repeating_flags: the non-repeating flags that the current (sub)command can accept
# - repeating_options: the repeating options that the current (sub)command can accept
# - non_repeating_options: the non-repeating options that the current (sub)command can accept
# - positional_number: value ignored
# - unparsed_words: unparsed words from the current command line
#
# modified variables:
#
# - non_repeating_flags: remove flags for this (sub)command that are already on the command line
# - non_repeating_options: remove options for this (sub)command that are already on the command line
# - positional_number: set to the current positional number
# - unparsed_words: remove all flags, options, and option values for this (sub)command
__speedy_offer_flags_options() {
    local -ir positional_count="${1}"
    positional_number=0

    local was_flag_option_terminator_seen=false
    local is_parsing_option_value=false

    local -ar unparsed_word_indices=("${!unparsed_words[@]}")
    local -i word_index
    for word_index in "${unparsed_word_indices[@]}"; do
        if "${is_parsing_option_value}"; then
            # This word is an option value:
            # Reset marker for next word iff not currently the last word
            [[ "${word_index}" -ne "${unparsed_word_indices[${#unparsed_word_indices[@]} - 1]}" ]] && is_parsing_option_value=false
            unset "unparsed_words[${word_index}]"
            # Do not process this word as a flag or an option
            continue
        fi

        local word="${unparsed_words["${word_index}"]}"
        if ! "${was_flag_option_terminator_seen}"; then
            case "${word}" in
            --)
                unset "unparsed_words[${word_index}]"
                # by itself -- is a flag/option terminator, but if it is the last word, it is the start of a completion
                if [[ "${word_index}" -ne "${unparsed_word_indices[${#unparsed_word_indices[@]} - 1]}" ]]; then
                    was_flag_option_terminator_seen=true
                fi
                continue
                ;;
            -*)
                # ${word} is a flag or an option
                # If ${word} is an option, mark that the next word to be parsed is an option value
                local option
                for option in "${repeating_options[@]}" "${non_repeating_options[@]}"; do
                    [[ "${word}" = "${option}" ]] && is_parsing_option_value=true && break
                done

                # Remove ${word} from ${non_repeating_flags} or ${non_repeating_options} so it isn't offered again
                local not_found=true
                local -i index
                for index in "${!non_repeating_flags[@]}"; do
                    if [[ "${non_repeating_flags[${index}]}" = "${word}" ]]; then
                        unset "non_repeating_flags[${index}]"
                        non_repeating_flags=("${non_repeating_flags[@]}")
                        not_found=false
                        break
                    fi
                done
                if "${not_found}"; then
                    for index in "${!non_repeating_flags[@]}"; do
                        if [[ "${non_repeating_flags[${index}]}" = "${word}" ]]; then
                            unset "non_repeating_flags[${index}]"
                            non_repeating_flags=("${non_repeating_flags[@]}")
                            break
                        fi
                    done
                fi
                unset "unparsed_words[${word_index}]"
                continue
                ;;
            esac
        fi

        # ${word} is neither a flag, nor an option, nor an option value
        if [[ "${positional_number}" -lt "${positional_count}" || "${positional_count}" -lt 0 ]]; then
            # ${word} is a positional
            ((positional_number++))
            unset "unparsed_words[${word_index}]"
        else
            if [[ -z "${word}" ]]; then
                # Could be completing a flag, option, or subcommand
                positional_number=-1
            else
                # ${word} is a subcommand or invalid, so stop processing this (sub)command
                positional_number=-2
            fi
            break
        fi
    done

    unparsed_words=("${unparsed_words[@]}")

    if\
        ! "${was_flag_option_terminator_seen}"\
        && ! "${is_parsing_option_value}"\
        && [[ ("${cur}" = -* && "${positional_number}" -ge 0) || "${positional_number}" -eq -1 ]]
    then
        COMPREPLY+=($(compgen -W "${repeating_flags[*]} ${non_repeating_flags[*]} ${repeating_options[*]} ${non_repeating_options[*]}" -- "${cur}"))
    fi
}

__speedy_add_completions() {
    local completion
    while IFS='' read -r completion; do
        COMPREPLY+=("${completion}")
    done < <(IFS=$'\n' compgen "${@}" -- "${cur}")
}

__speedy_custom_complete() {
    if [[ -n "${cur}" || -z ${COMP_WORDS[${COMP_CWORD}]} || "${COMP_LINE:${COMP_POINT}:1}" != ' ' ]]; then
        local -ar words=("${COMP_WORDS[@]}")
    else
        local -ar words=("${COMP_WORDS[@]::${COMP_CWORD}}" '' "${COMP_WORDS[@]:${COMP_CWORD}}")
    fi

    "${COMP_WORDS[0]}" "${@}" "${words[@]}"
}

_speedy() {
    local state
    state="$(shopt -p;shopt -po)"
    trap "${state//$'\n'/;}" RETURN
    shopt -s extglob
    set +o history +o posix

    local -xr SAP_SHELL=bash
    local -x SAP_SHELL_VERSION
    SAP_SHELL_VERSION="$(IFS='.';printf %s "${BASH_VERSINFO[*]}")"
    local -r SAP_SHELL_VERSION

    local -r cur="${2}"
    local -r prev="${3}"

    local -i positional_number
    local -a unparsed_words=("${COMP_WORDS[@]:1:${COMP_CWORD}}")

    local -a repeating_flags=()
    local -a non_repeating_flags=(-h --help)
    local -a repeating_options=()
    local -a non_repeating_options=()
    __speedy_offer_flags_options 0

    # Offer subcommand / subcommand argument completions
    local -r subcommand="${unparsed_words[0]}"
    unset 'unparsed_words[0]'
    unparsed_words=("${unparsed_words[@]}")
    case "${subcommand}" in
    up|chunkmaster|chunkserver|metaserver|imageserver|peer|tracker|htpasswd|certificates|credentials|help)
        # Offer subcommand argument completions
        "_speedy_${subcommand}"
        ;;
    *)
        # Offer subcommand completions
        COMPREPLY+=($(compgen -W 'up chunkmaster chunkserver metaserver imageserver peer tracker htpasswd certificates credentials help' -- "${cur}"))
        ;;
    esac
}

_speedy_up() {
    repeating_flags=()
    non_repeating_flags=(--auth --tls -h --help)
    repeating_options=(--upstream --upstream-credentials --upstream-ca)
    non_repeating_options=(--data --groups --replicas --master-port --chunkserver-port --meta-port --registry-port --volume-size --reserve --compact-every --gc-every --retention --sync --upstream-tag-ttl)
    __speedy_offer_flags_options 0

    # Offer option value completions
    case "${prev}" in
    '--data')
        return
        ;;
    '--groups')
        return
        ;;
    '--replicas')
        return
        ;;
    '--master-port')
        return
        ;;
    '--chunkserver-port')
        return
        ;;
    '--meta-port')
        return
        ;;
    '--registry-port')
        return
        ;;
    '--volume-size')
        return
        ;;
    '--reserve')
        return
        ;;
    '--compact-every')
        return
        ;;
    '--gc-every')
        return
        ;;
    '--retention')
        return
        ;;
    '--sync')
        return
        ;;
    '--upstream')
        return
        ;;
    '--upstream-credentials')
        return
        ;;
    '--upstream-ca')
        return
        ;;
    '--upstream-tag-ttl')
        return
        ;;
    esac
}

_speedy_chunkmaster() {
    repeating_flags=()
    non_repeating_flags=(--auto-repair --no-auto-repair --allow-same-zone --insecure -h --help)
    repeating_options=()
    non_repeating_options=(--listen --data --database --lease-ttl --down-after --advertise --compare-every --recovery-rate --replace-after --cluster-secret-file --role-table --tls-cert --tls-key --ca --tls-min-version --max-connections-per-client --header-timeout)
    __speedy_offer_flags_options 0

    # Offer option value completions
    case "${prev}" in
    '--listen')
        return
        ;;
    '--data')
        return
        ;;
    '--database')
        return
        ;;
    '--lease-ttl')
        return
        ;;
    '--down-after')
        return
        ;;
    '--advertise')
        return
        ;;
    '--compare-every')
        return
        ;;
    '--recovery-rate')
        return
        ;;
    '--replace-after')
        return
        ;;
    '--cluster-secret-file')
        return
        ;;
    '--role-table')
        return
        ;;
    '--tls-cert')
        return
        ;;
    '--tls-key')
        return
        ;;
    '--ca')
        return
        ;;
    '--tls-min-version')
        __speedy_add_completions -W '1.2'$'\n''1.3'
        return
        ;;
    '--max-connections-per-client')
        return
        ;;
    '--header-timeout')
        return
        ;;
    esac
}

_speedy_chunkserver() {
    repeating_flags=()
    non_repeating_flags=(--spare --insecure -h --help)
    repeating_options=()
    non_repeating_options=(--master --group --listen --advertise --zone --data --id --volume-size --max-chunk --reserve --capacity --heartbeat-interval --compact-threshold --compact-rate --compact-every --scrub-rate --scrub-every --cluster-secret-file --role-table --tls-cert --tls-key --ca --tls-min-version --max-connections-per-client --header-timeout)
    __speedy_offer_flags_options 0

    # Offer option value completions
    case "${prev}" in
    '--master')
        return
        ;;
    '--group')
        return
        ;;
    '--listen')
        return
        ;;
    '--advertise')
        return
        ;;
    '--zone')
        return
        ;;
    '--data')
        return
        ;;
    '--id')
        return
        ;;
    '--volume-size')
        return
        ;;
    '--max-chunk')
        return
        ;;
    '--reserve')
        return
        ;;
    '--capacity')
        return
        ;;
    '--heartbeat-interval')
        return
        ;;
    '--compact-threshold')
        return
        ;;
    '--compact-rate')
        return
        ;;
    '--compact-every')
        return
        ;;
    '--scrub-rate')
        return
        ;;
    '--scrub-every')
        return
        ;;
    '--cluster-secret-file')
        return
        ;;
    '--role-table')
        return
        ;;
    '--tls-cert')
        return
        ;;
    '--tls-key')
        return
        ;;
    '--ca')
        return
        ;;
    '--tls-min-version')
        __speedy_add_completions -W '1.2'$'\n''1.3'
        return
        ;;
    '--max-connections-per-client')
        return
        ;;
    '--header-timeout')
        return
        ;;
    esac
}

_speedy_metaserver() {
    repeating_flags=()
    non_repeating_flags=(--gc-compact --insecure -h --help)
    repeating_options=()
    non_repeating_options=(--listen --data --database --gc-every --gc-grace --gc-chunk-grace --master --id --retention --sync --cluster-secret-file --role-table --tls-cert --tls-key --ca --tls-min-version --max-connections-per-client --header-timeout)
    __speedy_offer_flags_options 0

    # Offer option value completions
    case "${prev}" in
    '--listen')
        return
        ;;
    '--data')
        return
        ;;
    '--database')
        return
        ;;
    '--gc-every')
        return
        ;;
    '--gc-grace')
        return
        ;;
    '--gc-chunk-grace')
        return
        ;;
    '--master')
        return
        ;;
    '--id')
        return
        ;;
    '--retention')
        return
        ;;
    '--sync')
        return
        ;;
    '--cluster-secret-file')
        return
        ;;
    '--role-table')
        return
        ;;
    '--tls-cert')
        return
        ;;
    '--tls-key')
        return
        ;;
    '--ca')
        return
        ;;
    '--tls-min-version')
        __speedy_add_completions -W '1.2'$'\n''1.3'
        return
        ;;
    '--max-connections-per-client')
        return
        ;;
    '--header-timeout')
        return
        ;;
    esac
}

_speedy_imageserver() {
    repeating_flags=()
    non_repeating_flags=(--insecure -h --help)
    repeating_options=(--trusted-proxy --upstream --upstream-credentials --upstream-ca)
    non_repeating_options=(--listen --master --meta --chunk-size --memory-budget --memory-per-client --memory-wait --client-idle-timeout --htpasswd --access --token-key-file --token-realm --token-lifetime --rate-limit --upload-expiry --hold-deadline --ticket-lifetime --id --pull-record-interval --uploads-per-repository --uploads-per-client --trusted-proxy-header --audit-log --upstream-tag-ttl --cluster-secret-file --role-table --tls-cert --tls-key --ca --tls-min-version --max-connections-per-client --header-timeout)
    __speedy_offer_flags_options 0

    # Offer option value completions
    case "${prev}" in
    '--listen')
        return
        ;;
    '--master')
        return
        ;;
    '--meta')
        return
        ;;
    '--chunk-size')
        return
        ;;
    '--memory-budget')
        return
        ;;
    '--memory-per-client')
        return
        ;;
    '--memory-wait')
        return
        ;;
    '--client-idle-timeout')
        return
        ;;
    '--htpasswd')
        return
        ;;
    '--access')
        return
        ;;
    '--token-key-file')
        return
        ;;
    '--token-realm')
        return
        ;;
    '--token-lifetime')
        return
        ;;
    '--rate-limit')
        return
        ;;
    '--upload-expiry')
        return
        ;;
    '--hold-deadline')
        return
        ;;
    '--ticket-lifetime')
        return
        ;;
    '--id')
        return
        ;;
    '--pull-record-interval')
        return
        ;;
    '--uploads-per-repository')
        return
        ;;
    '--uploads-per-client')
        return
        ;;
    '--trusted-proxy')
        return
        ;;
    '--trusted-proxy-header')
        return
        ;;
    '--audit-log')
        return
        ;;
    '--upstream')
        return
        ;;
    '--upstream-credentials')
        return
        ;;
    '--upstream-ca')
        return
        ;;
    '--upstream-tag-ttl')
        return
        ;;
    '--cluster-secret-file')
        return
        ;;
    '--role-table')
        return
        ;;
    '--tls-cert')
        return
        ;;
    '--tls-key')
        return
        ;;
    '--ca')
        return
        ;;
    '--tls-min-version')
        __speedy_add_completions -W '1.2'$'\n''1.3'
        return
        ;;
    '--max-connections-per-client')
        return
        ;;
    '--header-timeout')
        return
        ;;
    esac
}

_speedy_peer() {
    repeating_flags=()
    non_repeating_flags=(--blobs-from-registry -h --help)
    repeating_options=()
    non_repeating_options=(--listen --registry --cache --cache-size --ca --chunk-window --chunk-timeout --client-idle-timeout --tracker --peer-listen --peer-advertise --peer-secret-file --upload-rate)
    __speedy_offer_flags_options 0

    # Offer option value completions
    case "${prev}" in
    '--listen')
        return
        ;;
    '--registry')
        return
        ;;
    '--cache')
        return
        ;;
    '--cache-size')
        return
        ;;
    '--ca')
        return
        ;;
    '--chunk-window')
        return
        ;;
    '--chunk-timeout')
        return
        ;;
    '--client-idle-timeout')
        return
        ;;
    '--tracker')
        return
        ;;
    '--peer-listen')
        return
        ;;
    '--peer-advertise')
        return
        ;;
    '--peer-secret-file')
        return
        ;;
    '--upload-rate')
        return
        ;;
    esac
}

_speedy_tracker() {
    repeating_flags=()
    non_repeating_flags=(--insecure -h --help)
    repeating_options=()
    non_repeating_options=(--listen --peer-secret-file --announce-interval --master --id --cluster-secret-file --role-table --tls-cert --tls-key --ca --tls-min-version --max-connections-per-client --header-timeout)
    __speedy_offer_flags_options 0

    # Offer option value completions
    case "${prev}" in
    '--listen')
        return
        ;;
    '--peer-secret-file')
        return
        ;;
    '--announce-interval')
        return
        ;;
    '--master')
        return
        ;;
    '--id')
        return
        ;;
    '--cluster-secret-file')
        return
        ;;
    '--role-table')
        return
        ;;
    '--tls-cert')
        return
        ;;
    '--tls-key')
        return
        ;;
    '--ca')
        return
        ;;
    '--tls-min-version')
        __speedy_add_completions -W '1.2'$'\n''1.3'
        return
        ;;
    '--max-connections-per-client')
        return
        ;;
    '--header-timeout')
        return
        ;;
    esac
}

_speedy_htpasswd() {
    repeating_flags=()
    non_repeating_flags=(-h --help)
    repeating_options=()
    non_repeating_options=(--cost)
    __speedy_offer_flags_options 1

    # Offer option value completions
    case "${prev}" in
    '--cost')
        return
        ;;
    esac
}

_speedy_certificates() {
    repeating_flags=()
    non_repeating_flags=(-h --help)
    repeating_options=(--host)
    non_repeating_options=(--out)
    __speedy_offer_flags_options 0

    # Offer option value completions
    case "${prev}" in
    '--out')
        return
        ;;
    '--host')
        return
        ;;
    esac
}

_speedy_credentials() {
    repeating_flags=()
    non_repeating_flags=(--json -h --help)
    repeating_options=()
    non_repeating_options=(--out --operator-secret --print-credential --secret-file)
    __speedy_offer_flags_options 0

    # Offer option value completions
    case "${prev}" in
    '--out')
        return
        ;;
    '--operator-secret')
        return
        ;;
    '--print-credential')
        return
        ;;
    '--secret-file')
        return
        ;;
    esac
}

_speedy_help() {
    :
}

complete -o filenames -F _speedy speedy
