#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Run the WebSocket gateway (asr serve) in front of a Riva endpoint: the NIM on this host,
# NVIDIA's hosted endpoint, or any gRPC target such as a DNS name over several NIMs.
set -euo pipefail
SCRIPT_NAME=$(basename "$0")
# shellcheck source=lib/riva-common.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/riva-common.sh"

usage() {
    cat <<EOF
Usage: $SCRIPT_NAME [options] [-- ASR_SERVE_ARGS...]

Point the WebSocket server at a Riva endpoint through the RIVA_* variables, check that the
endpoint answers (asr models), then exec asr serve (HTTPS/WSS, port 8443 by default).

Target (one of):
  --nim             the NIM deployed by riva-deploy.sh: NIM_HOST:NIM_GRPC_PORT, plaintext (default)
  --hosted          NVIDIA's hosted endpoint NVCF_URI (grpc.nvcf.nvidia.com:443) over TLS,
                    with function-id (NVCF_FUNCTION_ID) and authorization: Bearer
                    (NVIDIA_API_KEY, else NGC_API_KEY) call metadata
  --uri URI         any gRPC target, e.g. dns:///riva-asr-headless.asr.svc.cluster.local:50051;
                    the other RIVA_* variables (TLS, metadata) come from the env file
Options:
  --lb POLICY       RIVA_LB_POLICY, e.g. round_robin to spread streams over every address
                    a dns:/// or ipv4: target resolves to
  --env-file FILE   settings file of KEY=VALUE lines (default: .env of the repository)
  --cert FILE       ASR_SERVER_CERT, the gateway's TLS certificate (default certs/server.pem,
                    made with asr make-cert if missing)
  --key FILE        ASR_SERVER_KEY, its private key (default certs/server.key)
  --no-check        start without checking the Riva endpoint first
  --dry-run         print the settings (secrets masked) and commands; run nothing
  -h, --help        show this help
EOF
}

ENV_FILE="$RIVA_REPO/.env"
TARGET=nim
URI=
CHECK=1
CERT=${ASR_SERVER_CERT:-$RIVA_REPO/certs/server.pem}
KEY=${ASR_SERVER_KEY:-$RIVA_REPO/certs/server.key}
script_option() {
    case $1 in
    --nim) TARGET=nim ;;
    --hosted) TARGET=hosted ;;
    --uri) arg "$@" && TARGET=uri && URI=$2 && OPTION_ARGS=2 ;;
    --lb) arg "$@" && export RIVA_LB_POLICY=$2 && OPTION_ARGS=2 ;;
    --cert) arg "$@" && CERT=$2 && OPTION_ARGS=2 ;;
    --key) arg "$@" && KEY=$2 && OPTION_ARGS=2 ;;
    --no-check) CHECK=0 ;;
    --) shift && REST_ARGS=("$@") && OPTION_ARGS=$(($# + 1)) ;;
    *) return 1 ;;
    esac
}
parse_options "$@"
set -- "${REST_ARGS[@]}"

case $TARGET in
nim)
    export RIVA_URI="$NIM_HOST:$NIM_GRPC_PORT" RIVA_USE_SSL=false RIVA_METADATA=
    unset RIVA_SSL_ROOT_CERT RIVA_SSL_CLIENT_CERT RIVA_SSL_CLIENT_KEY
    ;;
hosted) use_hosted ;;
uri) export RIVA_URI=$URI ;;
esac
log "gateway -> Riva at $RIVA_URI"
show_riva_env >&2

if [ "$CHECK" = 1 ]; then
    run "$ASR_BIN" models --server "$RIVA_URI"
fi
if [ ! -f "$CERT" ] && [ "$CERT" = "$RIVA_REPO/certs/server.pem" ]; then
    run "$ASR_BIN" make-cert "$RIVA_REPO/certs"
fi
# The server reads its settings from ASR_SERVER_* (host, port, certificate, limits).
export ASR_SERVER_CERT=$CERT ASR_SERVER_KEY=$KEY
printf '  ASR_SERVER_CERT=%s\n  ASR_SERVER_KEY=%s\n' "$CERT" "$KEY" >&2
printf '+ exec %s\n' "$(quote "$ASR_BIN" serve "$@")"
if [ "$DRY_RUN" = 1 ]; then
    log "dry run: nothing was started"
    exit 0
fi
exec "$ASR_BIN" serve "$@"
