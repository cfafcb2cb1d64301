#!/bin/sh
# Entrypoint of the sync-agent image (POSIX sh; tini runs it as PID 1's child).
#
#   start [ARGS]          (default) check the environment, load *_FILE values, then
#                         exec `sync-agent start ARGS`
#   wait-ready [-- CMD]   wait until the agent answers ready (its first full exchange with a
#                         peer is done), then exec CMD if one is given; for a one-shot
#                         service that WordPress depends on (`service_completed_successfully`)
#   healthcheck           exit 0 when GET /healthz on SYNC_AGENT_HTTP answers 2xx (HEALTHCHECK)
#   secret|status|versions|rescan|pause|resume|accept-deletes|revert|migrate|help ARGS   that sync-agent command
#   anything else         exec'd as is (e.g. sh)
#
# Secrets and other values can come from files: for SYNC_AGENT_<NAME>_FILE=/path the file's
# content becomes SYNC_AGENT_<NAME> (Docker's *_FILE convention). SYNC_AGENT_SECRET_FILE is
# the exception: the agent reads that file itself, so the secret never sits in an environment.
set -eu

die() {
  printf 'sync-agent-entrypoint: %s\n' "$*" >&2
  exit 2
}

warn() {
  printf 'sync-agent-entrypoint: warning: %s\n' "$*" >&2
}

readable() {
  [ -f "$1" ] && [ -r "$1" ]
}

load_file_vars() {
  for name in $(env | sed -n 's/^\(SYNC_AGENT_[A-Z0-9_]*\)_FILE=.*/\1/p'); do
    [ "$name" = SYNC_AGENT_SECRET ] && continue
    file_var="${name}_FILE"
    eval "file=\${$file_var}"
    eval "direct=\${$name-}"
    [ -z "$file" ] && die "$file_var is empty; give the path of a file"
    [ -n "$direct" ] && die "$name and $file_var are both set; set only one"
    readable "$file" || die "$file_var: cannot read $file (mount the file or compose secret there)"
    # $(...) drops trailing newlines, as a secret file usually ends with one
    value=$(cat "$file")
    export "$name=$value"
    unset "$file_var"
  done
}

who() {
  printf 'uid %s (gid %s)' "$(id -u)" "$(id -g)"
}

check_start_env() {
  folder=${SYNC_AGENT_FOLDER:-}
  data=${SYNC_AGENT_DATA:-}
  [ -n "$folder" ] || die "SYNC_AGENT_FOLDER is not set: the synced folder (mount WordPress's wp-content volume and point it there)"
  [ -d "$folder" ] || die "SYNC_AGENT_FOLDER=$folder is not a directory: mount WordPress's wp-content volume there"
  [ -w "$folder" ] || die "SYNC_AGENT_FOLDER=$folder is not writable by $(who): run the container as the folder's owner (build arg SYNC_AGENT_UID/GID or --user) or chown the volume"
  [ -n "$data" ] || die "SYNC_AGENT_DATA is not set: the agent's state dir (mount a volume there)"
  if [ -e "$data" ]; then
    [ -d "$data" ] || die "SYNC_AGENT_DATA=$data is not a directory"
    [ -w "$data" ] || die "SYNC_AGENT_DATA=$data is not writable by $(who): chown the volume to $(id -u):$(id -g)"
  else
    parent=$(dirname "$data")
    [ -w "$parent" ] || die "SYNC_AGENT_DATA=$data does not exist and $parent is not writable by $(who): mount a volume at $data"
  fi
  if [ -n "${SYNC_AGENT_SECRET_FILE:-}" ]; then
    [ -n "${SYNC_AGENT_SECRET:-}" ] && die "SYNC_AGENT_SECRET and SYNC_AGENT_SECRET_FILE are both set; set only one"
    readable "$SYNC_AGENT_SECRET_FILE" ||
      die "SYNC_AGENT_SECRET_FILE: cannot read $SYNC_AGENT_SECRET_FILE as $(who) (is the compose secret mounted, and readable by this user?)"
  elif [ -z "${SYNC_AGENT_SECRET:-}" ]; then
    die "no folder secret: set SYNC_AGENT_SECRET_FILE=/run/secrets/<name> (a compose secret) or SYNC_AGENT_SECRET; make one with: docker run --rm <image> secret new"
  fi
  [ -n "${SYNC_AGENT_HTTP:-}" ] || warn "SYNC_AGENT_HTTP is not set: no /healthz for the HEALTHCHECK, no /readyz, no /metrics"
  return 0
}

wait_ready() {
  timeout=${SYNC_AGENT_WAIT_TIMEOUT:-600}
  case $timeout in
    '' | *[!0-9]*) die "SYNC_AGENT_WAIT_TIMEOUT=$timeout: expected whole seconds" ;;
  esac
  [ "${1-}" = -- ] && shift
  status=0
  sync-agent wait-ready --timeout "$timeout" || status=$?
  [ "$status" -eq 0 ] || {
    printf 'sync-agent-entrypoint: the agent was not ready within %ss (sync-agent wait-ready exited %s)\n' "$timeout" "$status" >&2
    exit "$status"
  }
  [ $# -eq 0 ] && exit 0
  exec "$@"
}

healthcheck() {
  [ -n "${SYNC_AGENT_HTTP:-}" ] || die "healthcheck: SYNC_AGENT_HTTP is not set"
  # no curl in the slim image: node's fetch. A wildcard listen address is asked on loopback.
  # shellcheck disable=SC2016 # JavaScript, not shell
  exec node -e '
    const text = process.argv[1]
    const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(text)
    if (!m) { console.error(`healthcheck: SYNC_AGENT_HTTP=${text}: expected host:port`); process.exit(2) }
    let host = m[1] ?? m[2]
    if (host === "0.0.0.0") host = "127.0.0.1"
    if (host === "::") host = "::1"
    const url = `http://${host.includes(":") ? `[${host}]` : host}:${m[3]}/healthz`
    fetch(url, { signal: AbortSignal.timeout(4000) }).then(
      (res) => { if (!res.ok) console.error(`healthcheck: ${url} answered ${res.status}`); process.exit(res.ok ? 0 : 1) },
      (err) => { console.error(`healthcheck: ${url}: ${err.cause?.code ?? err.message}`); process.exit(1) }
    )' "$SYNC_AGENT_HTTP"
}

mode=${1:-start}
[ $# -gt 0 ] && shift
case $mode in
  start)
    load_file_vars
    check_start_env
    exec sync-agent start "$@"
    ;;
  wait-ready)
    load_file_vars
    wait_ready "$@"
    ;;
  healthcheck)
    healthcheck
    ;;
  secret | status | versions | rescan | pause | resume | accept-deletes | revert | migrate | help | --help | -h)
    exec sync-agent "$mode" "$@"
    ;;
  *)
    exec "$mode" "$@"
    ;;
esac
