#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Smoke-test a Riva ASR endpoint end to end: gRPC health, the model list, and a streamed
# transcription of a known recording whose transcript must contain the expected words.
set -euo pipefail
SCRIPT_NAME=$(basename "$0")
# shellcheck source=lib/riva-common.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/riva-common.sh"

usage() {
    cat <<EOF
Usage: $SCRIPT_NAME [options]

Stream an audio file through a Riva endpoint with the asr CLI and check the transcript.
Works against the NIM (default NIM_HOST:NIM_GRPC_PORT), asr riva-local, or NVIDIA's
hosted endpoint (--hosted). Exit status 0 on success.

Options:
  --env-file FILE   settings file of KEY=VALUE lines (default: .env of the repository)
  --server URI      gRPC endpoint (default NIM_HOST:NIM_GRPC_PORT, i.e. localhost:50051)
  --hosted          NVIDIA's hosted endpoint: NVCF_URI over TLS with function-id and
                    authorization metadata from NVCF_FUNCTION_ID and NVIDIA_API_KEY
  --file AUDIO      RIVA_SMOKE_FILE (default \$ASR_SPEECH_FIXTURES/jfk/jfk.wav)
  --expect TEXT     words the transcript must contain, case and punctuation ignored
                    (default: the JFK sentence when the default file is used)
  --dry-run         print the commands instead of running them
  -h, --help        show this help
EOF
}

ENV_FILE="$RIVA_REPO/.env"
SERVER=
HOSTED=0
EXPECT=${RIVA_SMOKE_EXPECT:-}
script_option() {
    case $1 in
    --server) arg "$@" && SERVER=$2 && OPTION_ARGS=2 ;;
    --hosted) HOSTED=1 ;;
    *) smoke_option "$@" ;;
    esac
}
parse_options "$@"
smoke_expectation

if [ "$HOSTED" = 1 ]; then
    use_hosted
    SERVER=$RIVA_URI
elif [ -z "$SERVER" ]; then
    SERVER="$NIM_HOST:$NIM_GRPC_PORT"
fi
export RIVA_URI=$SERVER
show_riva_env
# The hosted endpoint is checked with the model list alone: it proves TLS, the API key and
# the function-id routing, where the gRPC health service need not be exposed.
if [ "$HOSTED" = 0 ]; then
    run "$ASR_BIN" health --server "$SERVER"
fi
smoke "$SERVER" "$RIVA_SMOKE_FILE" "$EXPECT"
if [ "$DRY_RUN" = 0 ]; then log "smoke test passed: $SERVER"; fi
