#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Deploy the Riva ASR NIM on this GPU host with Docker, wait until it is ready, and
# smoke-test it over gRPC with the asr CLI. Run with --help for the options.
set -euo pipefail
SCRIPT_NAME=$(basename "$0")
# shellcheck source=lib/riva-common.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/riva-common.sh"

usage() {
    cat <<EOF
Usage: $SCRIPT_NAME [options]

Deploy the Riva ASR NIM container on this host:
  1. check the NVIDIA driver (nvidia-smi), Docker and the NVIDIA Container Toolkit
  2. docker login nvcr.io as \$oauthtoken with NGC_API_KEY (read from stdin, never printed)
  3. docker pull NIM_IMAGE:NIM_TAG, replace a container of the same name, docker run it
     with the GPU, NIM_TAGS_SELECTOR, gRPC port NIM_GRPC_PORT (50051) and HTTP port
     NIM_HTTP_PORT (9000), the model cache NIM_CACHE_DIR mounted on /opt/nim/.cache
  4. wait for GET http://NIM_HOST:NIM_HTTP_PORT/v1/health/ready (NIM_READY_TIMEOUT seconds;
     the first start downloads the model and may build TensorRT engines)
  5. asr models and asr transcribe RIVA_SMOKE_FILE against NIM_HOST:NIM_GRPC_PORT

Options (each overrides the variable named):
  --env-file FILE      settings file of KEY=VALUE lines (default: .env of the repository)
  --image IMAGE        NIM_IMAGE, without tag (default nvcr.io/nim/nvidia/parakeet-0-6b-ctc-en-us)
  --tag TAG            NIM_TAG (default latest; pin a version in production)
  --tags-selector SEL  NIM_TAGS_SELECTOR (default name=parakeet-0-6b-ctc-riva-en-us,mode=str)
  --name NAME          NIM_CONTAINER_NAME (default riva-asr)
  --gpus SPEC          NIM_GPUS, as docker run --gpus takes it (default device=0)
  --shm-size SIZE      NIM_SHM_SIZE (default 8g)
  --cache-dir DIR      NIM_CACHE_DIR (default ~/.cache/nim)
  --grpc-port PORT     NIM_GRPC_PORT on the host (default 50051)
  --http-port PORT     NIM_HTTP_PORT on the host (default 9000)
  --timeout SECONDS    NIM_READY_TIMEOUT (default 1800)
  --file AUDIO         RIVA_SMOKE_FILE for the smoke test (default \$ASR_SPEECH_FIXTURES/jfk/jfk.wav)
  --expect TEXT        text the smoke transcript must contain (default: the JFK sentence
                       when the default file is used)
  --no-login           skip docker login (image already pulled, or credentials stored)
  --no-smoke           skip the gRPC smoke test
  --dry-run            print every command instead of running it; change nothing
  -h, --help           show this help

Environment: NGC_API_KEY (required; an NGC API key, nvapi-...), and the variables above.
EOF
}

ENV_FILE="$RIVA_REPO/.env"
LOGIN=1
SMOKE=1
EXPECT=${RIVA_SMOKE_EXPECT:-}
script_option() {
    case $1 in
    --image) arg "$@" && export NIM_IMAGE=$2 && OPTION_ARGS=2 ;;
    --tag) arg "$@" && export NIM_TAG=$2 && OPTION_ARGS=2 ;;
    --tags-selector) arg "$@" && export NIM_TAGS_SELECTOR=$2 && OPTION_ARGS=2 ;;
    --name) arg "$@" && export NIM_CONTAINER_NAME=$2 && OPTION_ARGS=2 ;;
    --gpus) arg "$@" && export NIM_GPUS=$2 && OPTION_ARGS=2 ;;
    --shm-size) arg "$@" && export NIM_SHM_SIZE=$2 && OPTION_ARGS=2 ;;
    --cache-dir) arg "$@" && export NIM_CACHE_DIR=$2 && OPTION_ARGS=2 ;;
    --grpc-port) arg "$@" && export NIM_GRPC_PORT=$2 && OPTION_ARGS=2 ;;
    --http-port) arg "$@" && export NIM_HTTP_PORT=$2 && OPTION_ARGS=2 ;;
    --timeout) arg "$@" && export NIM_READY_TIMEOUT=$2 && OPTION_ARGS=2 ;;
    --no-login) LOGIN=0 ;;
    --no-smoke) SMOKE=0 ;;
    *) smoke_option "$@" ;;
    esac
}
parse_options "$@"
smoke_expectation

image="${NIM_IMAGE}:${NIM_TAG}"
registry=${NIM_IMAGE%%/*}
log "image $image, profile NIM_TAGS_SELECTOR=$NIM_TAGS_SELECTOR"
log "NGC_API_KEY=$(mask "${NGC_API_KEY:-}")"
if [ -z "${NGC_API_KEY:-}" ]; then
    [ "$DRY_RUN" = 1 ] || die "NGC_API_KEY is not set (in the environment or $ENV_FILE)"
    log "warning: NGC_API_KEY is not set (ignored in --dry-run)"
fi

# 1. Preflight: read-only checks.
check "NVIDIA driver (nvidia-smi)" nvidia-smi
check "docker engine (docker info)" docker info
check "NVIDIA Container Toolkit (nvidia-ctk or the nvidia docker runtime)" nvidia_toolkit_present
check "curl" has curl
check "asr CLI ($ASR_BIN)" has "$ASR_BIN"

# 2. Registry login; the key goes through stdin, so it is in neither argv nor the output.
if [ "$LOGIN" = 1 ]; then
    # shellcheck disable=SC2016  # $oauthtoken is NGC's literal user name, not a variable
    run_with_secret "${NGC_API_KEY:-}" docker login "$registry" --username '$oauthtoken' --password-stdin
fi

# 3. Pull first, then replace: the old container keeps serving while the image downloads.
run docker pull "$image"
# The NIM runs as an unprivileged user that must write the cache (models, TensorRT engines).
run mkdir -p "$NIM_CACHE_DIR"
run chmod a+rwx "$NIM_CACHE_DIR"
if [ "$DRY_RUN" = 1 ] || docker container inspect "$NIM_CONTAINER_NAME" >/dev/null 2>&1; then
    run docker rm -f "$NIM_CONTAINER_NAME"
fi
# -e NGC_API_KEY without a value: docker copies it from this environment, out of argv.
run docker run -d \
    --name "$NIM_CONTAINER_NAME" \
    --restart unless-stopped \
    --gpus "$NIM_GPUS" \
    --shm-size "$NIM_SHM_SIZE" \
    -e NGC_API_KEY \
    -e "NIM_TAGS_SELECTOR=$NIM_TAGS_SELECTOR" \
    -e NIM_GRPC_API_PORT=50051 \
    -e NIM_HTTP_API_PORT=9000 \
    -p "$NIM_GRPC_PORT:50051" \
    -p "$NIM_HTTP_PORT:9000" \
    -v "$NIM_CACHE_DIR:/opt/nim/.cache" \
    "$image"

# 4. Ready when the HTTP health endpoint says so.
wait_ready "$(nim_health_url)" "$NIM_READY_TIMEOUT"

# 5. Smoke test over gRPC: the local NIM speaks plaintext gRPC without call metadata.
if [ "$SMOKE" = 1 ]; then
    export RIVA_USE_SSL=false RIVA_METADATA=
    unset RIVA_SSL_ROOT_CERT RIVA_SSL_CLIENT_CERT RIVA_SSL_CLIENT_KEY
    smoke "$NIM_HOST:$NIM_GRPC_PORT" "$RIVA_SMOKE_FILE" "$EXPECT"
fi
if [ "$DRY_RUN" = 1 ]; then
    log "dry run: nothing was changed"
else
    log "deployed $image as $NIM_CONTAINER_NAME: gRPC $NIM_HOST:$NIM_GRPC_PORT, health $(nim_health_url)"
fi
