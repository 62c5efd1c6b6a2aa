#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Report on a Riva ASR endpoint: the NIM container, its HTTP readiness, gRPC health and
# models. Read-only. Exit status 0 when everything checked is healthy, 1 otherwise.
set -euo pipefail
SCRIPT_NAME=$(basename "$0")
# shellcheck source=lib/riva-common.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/riva-common.sh"

usage() {
    cat <<EOF
Usage: $SCRIPT_NAME [options]

Show the state of the Riva ASR NIM deployed by riva-deploy.sh, or of any Riva endpoint:
  docker ps for the container NIM_CONTAINER_NAME (skipped with --server or --hosted),
  GET http://NIM_HOST:NIM_HTTP_PORT/v1/health/ready (skipped likewise),
  asr health and asr models over gRPC.

Options:
  --env-file FILE   settings file of KEY=VALUE lines (default: .env of the repository)
  --server URI      check this gRPC endpoint only (e.g. localhost:50051 of asr riva-local)
  --hosted          check NVIDIA's hosted endpoint (NVCF_URI, NVCF_FUNCTION_ID, NVIDIA_API_KEY)
  --name NAME       NIM_CONTAINER_NAME (default riva-asr)
  --dry-run         print the commands instead of running them
  -h, --help        show this help
EOF
}

ENV_FILE="$RIVA_REPO/.env"
SERVER=
HOSTED=0
script_option() {
    case $1 in
    --server) arg "$@" && SERVER=$2 && OPTION_ARGS=2 ;;
    --hosted) HOSTED=1 ;;
    --name) arg "$@" && export NIM_CONTAINER_NAME=$2 && OPTION_ARGS=2 ;;
    *) return 1 ;;
    esac
}
parse_options "$@"

failed=0
step() {
    if ! run "$@"; then
        failed=1
    fi
}

if [ "$HOSTED" = 1 ]; then
    use_hosted
    SERVER=$RIVA_URI
elif [ -z "$SERVER" ]; then
    SERVER="$NIM_HOST:$NIM_GRPC_PORT"
    export RIVA_USE_SSL=false RIVA_METADATA=
    step docker ps --all --filter "name=^${NIM_CONTAINER_NAME}\$" \
        --format '{{.Names}}  {{.Image}}  {{.Status}}'
    step curl -fsS --max-time 5 "$(nim_health_url)"
    [ "$DRY_RUN" = 1 ] || echo
fi
export RIVA_URI=$SERVER
show_riva_env
step "$ASR_BIN" health --server "$SERVER"
step "$ASR_BIN" models --server "$SERVER"
if [ "$DRY_RUN" = 1 ]; then
    log "dry run: nothing was checked"
elif [ "$failed" = 0 ]; then
    log "healthy: $SERVER"
else
    log "NOT healthy: $SERVER"
fi
exit "$failed"
