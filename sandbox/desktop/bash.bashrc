# deskhand's system bashrc, installed read-only as /etc/bash.bashrc in the sandbox.
#
# The second gate: before every simple command an interactive bash runs, the
# DEBUG trap asks deskhand (the executor, on the sandbox's own loopback, which
# asks the host's policy).  With extdebug a trap status of 1 skips the command.
# Commands that would change or remove the trap are themselves judged first,
# and the policy denies them.  No answer means no: the gate fails closed.
[ -z "$PS1" ] && return

PS1='\u@deskhand:\w\$ '

__deskhand_gate() {
    local fd verdict
    [ -n "${COMP_LINE:-}" ] && return 0  # completion internals, not commands
    if ! exec {fd}<>/dev/tcp/127.0.0.1/47391; then
        printf 'deskhand: the command gate cannot be reached; refused\n' >&2
        return 1
    fi 2>/dev/null
    printf '%s\0' "$BASH_COMMAND" >&"$fd"
    IFS= read -r -d '' verdict <&"$fd"
    exec {fd}>&-
    [ "$verdict" = allow ] && return 0
    printf 'deskhand: refused: %s\n' "${verdict#deny }" >&2
    return 1
}
readonly -f __deskhand_gate
shopt -s extdebug
set -o functrace  # subshells, command substitutions and functions ask too
trap '__deskhand_gate' DEBUG
