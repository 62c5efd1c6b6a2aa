# shellcheck shell=bash
# Helpers shared by scripts/riva-*.sh. Source it; it defines functions and defaults only.
#
# Settings come, in increasing precedence, from the defaults below, the env file
# (--env-file, default ./.env), the process environment, then each script's flags.
# The env file is parsed as KEY=VALUE lines, never sourced: values such as
# "authorization=Bearer nvapi-..." contain spaces, and a settings file must not run code.

RIVA_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
DRY_RUN=${DRY_RUN:-0}

# Defaults. NIM_IMAGE/NIM_TAG/NIM_TAGS_SELECTOR pick the Riva ASR NIM and its model
# profile ("mode=str" is the low-latency streaming profile, what a live gateway needs).
riva_defaults() {
    : "${NIM_IMAGE:=nvcr.io/nim/nvidia/parakeet-0-6b-ctc-en-us}"
    : "${NIM_TAG:=latest}"
    : "${NIM_TAGS_SELECTOR:=name=parakeet-0-6b-ctc-riva-en-us,mode=str}"
    : "${NIM_CONTAINER_NAME:=riva-asr}"
    : "${NIM_GPUS:=device=0}"
    : "${NIM_SHM_SIZE:=8g}"
    : "${NIM_CACHE_DIR:=${HOME}/.cache/nim}"
    # An env file is not run by a shell, so expand a leading ~ here as a shell would.
    # shellcheck disable=SC2088  # the literal ~ is what is matched, not expanded
    case $NIM_CACHE_DIR in "~" | "~/"*) NIM_CACHE_DIR="${HOME}${NIM_CACHE_DIR:1}" ;; esac
    : "${NIM_HOST:=localhost}"
    : "${NIM_GRPC_PORT:=50051}"
    : "${NIM_HTTP_PORT:=9000}"
    : "${NIM_READY_TIMEOUT:=1800}"
    : "${NVCF_URI:=grpc.nvcf.nvidia.com:443}"
    # JFK from the speech sets, when ASR_SPEECH_FIXTURES names them (as asr wer reads it).
    : "${RIVA_SMOKE_FILE:=${ASR_SPEECH_FIXTURES:+${ASR_SPEECH_FIXTURES}/jfk/jfk.wav}}"
    if [ -z "${ASR_BIN:-}" ]; then
        if [ -x "${RIVA_REPO}/.venv/bin/asr" ]; then
            ASR_BIN="${RIVA_REPO}/.venv/bin/asr"
        else
            ASR_BIN=asr
        fi
    fi
}

log() { printf '%s: %s\n' "${SCRIPT_NAME:-riva}" "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}

# load_env FILE: export KEY=VALUE lines of FILE for keys not already in the environment.
load_env() {
    local file=$1 line key value
    [ -f "$file" ] || return 0
    while IFS= read -r line || [ -n "$line" ]; do
        line=${line%$'\r'}
        case $line in '' | '#'*) continue ;; esac
        line=${line#export }
        key=${line%%=*}
        [ "$key" != "$line" ] || continue
        key=${key//[[:space:]]/}
        [[ $key =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || continue
        value=${line#*=}
        # One pair of surrounding quotes is removed, as docker's and compose's parsers do.
        if [[ $value =~ ^\"(.*)\"$ ]] || [[ $value =~ ^\'(.*)\'$ ]]; then
            value=${BASH_REMATCH[1]}
        fi
        if [ -z "${!key+set}" ]; then
            export "$key=$value"
        fi
    done <"$file"
}

# mask SECRET: a form safe to print; the last four characters identify which key it is.
mask() {
    local secret=$1
    if [ -z "$secret" ]; then
        printf '<unset>'
    elif [ "${#secret}" -ge 16 ]; then
        printf '****%s' "${secret: -4}"
    else
        printf '****'
    fi
}

# quote ARGS...: the arguments as one shell-quoted line.
quote() {
    local out='' arg
    for arg in "$@"; do
        if [[ $arg =~ ^[A-Za-z0-9_./:=,@%+-]+$ ]]; then
            out+="$arg "
        else
            out+="'${arg//\'/\'\\\'\'}' "
        fi
    done
    printf '%s' "${out% }"
}

# run CMD...: print the command; run it unless --dry-run.
run() {
    printf '+ %s\n' "$(quote "$@")"
    if [ "$DRY_RUN" = 1 ]; then
        return 0
    fi
    "$@"
}

# run_with_secret SECRET CMD...: run CMD with SECRET on its standard input, so the secret
# never appears in argv (ps, shell history) nor in what is printed.
run_with_secret() {
    local secret=$1
    shift
    printf '+ printf %%s %s | %s\n' "$(mask "$secret")" "$(quote "$@")"
    if [ "$DRY_RUN" = 1 ]; then
        return 0
    fi
    printf '%s' "$secret" | "$@"
}

# check NAME CMD...: a read-only preflight check. Fatal for real runs; in --dry-run only
# reported, so the plan can be printed on a machine without a GPU or Docker engine.
check() {
    local name=$1
    shift
    if "$@" >/dev/null 2>&1; then
        log "check ok: $name"
        return 0
    fi
    if [ "$DRY_RUN" = 1 ]; then
        log "check failed (ignored in --dry-run): $name"
        return 0
    fi
    die "check failed: $name ($(quote "$@"))"
}

has() { command -v "$1" >/dev/null 2>&1; }

# The NVIDIA Container Toolkit registers the "nvidia" runtime with Docker (or, with CDI,
# provides nvidia-ctk); either means `docker run --gpus` can reach the GPU.
nvidia_toolkit_present() {
    has nvidia-ctk || has nvidia-container-toolkit ||
        docker info --format '{{json .Runtimes}}' 2>/dev/null | grep -q nvidia
}

nim_health_url() { printf 'http://%s:%s/v1/health/ready' "$NIM_HOST" "$NIM_HTTP_PORT"; }

# wait_ready URL TIMEOUT: poll URL until it answers 2xx or TIMEOUT seconds pass.
wait_ready() {
    local url=$1 timeout=$2 deadline
    printf '+ %s  # every 5 s, for up to %s s\n' "$(quote curl -fsS --max-time 5 "$url")" "$timeout"
    [ "$DRY_RUN" = 1 ] && return 0
    deadline=$((SECONDS + timeout))
    until curl -fsS --max-time 5 "$url" >/dev/null 2>&1; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            die "not ready after ${timeout}s: GET $url (see: docker logs $NIM_CONTAINER_NAME)"
        fi
        if [ -n "${NIM_CONTAINER_NAME:-}" ] && has docker &&
            [ "$(docker inspect -f '{{.State.Running}}' "$NIM_CONTAINER_NAME" 2>/dev/null)" = false ]; then
            die "container $NIM_CONTAINER_NAME exited; docker logs $NIM_CONTAINER_NAME"
        fi
        sleep 5
    done
    log "ready: $url"
}

# smoke SERVER FILE [EXPECT]: list the models and stream FILE through SERVER; with EXPECT,
# the transcript must contain it (case and punctuation ignored). TLS and call metadata come
# from the RIVA_* variables, which the asr CLI reads.
smoke() {
    local server=$1 file=$2 expect=${3:-} transcript
    [ -n "$file" ] || die "no smoke-test audio: pass --file AUDIO, or set RIVA_SMOKE_FILE or ASR_SPEECH_FIXTURES"
    run "$ASR_BIN" models --server "$server"
    if [ "$DRY_RUN" = 1 ]; then
        run "$ASR_BIN" transcribe "$file" --server "$server"
        return 0
    fi
    [ -f "$file" ] || die "smoke-test audio not found: $file (use --file)"
    printf '+ %s\n' "$(quote "$ASR_BIN" transcribe "$file" --server "$server")"
    transcript=$("$ASR_BIN" transcribe "$file" --server "$server")
    printf '%s\n' "$transcript"
    [ -n "$transcript" ] || die "empty transcript for $file"
    if [ -n "$expect" ]; then
        if [[ "$(normalise "$transcript")" != *"$(normalise "$expect")"* ]]; then
            die "transcript does not contain: $expect"
        fi
        log "transcript contains: $expect"
    fi
}

normalise() { printf '%s' "$1" | tr '[:upper:]' '[:lower:]' | tr -cs 'a-z0-9' ' ' | xargs; }

# use_hosted: point the RIVA_* settings at NVIDIA's hosted endpoint (NVCF): TLS with the
# system roots, and the function-id + authorization metadata NVCF routes and bills by.
use_hosted() {
    local key=${NVIDIA_API_KEY:-${NGC_API_KEY:-}}
    if [ -z "${NVCF_FUNCTION_ID:-}" ] || [ -z "$key" ]; then
        [ "$DRY_RUN" = 1 ] || die "--hosted needs NVCF_FUNCTION_ID and NVIDIA_API_KEY (or NGC_API_KEY)"
        log "warning: NVCF_FUNCTION_ID or NVIDIA_API_KEY unset (ignored in --dry-run)"
    fi
    export RIVA_URI=$NVCF_URI RIVA_USE_SSL=true
    export RIVA_METADATA="function-id=${NVCF_FUNCTION_ID:-},authorization=Bearer ${key}"
}

# mask_metadata TEXT: RIVA_METADATA ("k=v,k=v") with credential values masked.
mask_metadata() {
    local out='' pair key value
    local -a pairs
    IFS=',' read -r -a pairs <<<"$1"
    for pair in "${pairs[@]}"; do
        key=${pair%%=*}
        value=${pair#*=}
        case ${key,,} in
        *authorization*)
            if [[ $value == *' '* ]]; then
                value="${value%% *} $(mask "${value#* }")"
            else
                value=$(mask "$value")
            fi
            ;;
        *key* | *token* | *secret* | *password*) value=$(mask "$value") ;;
        esac
        out+="${key}=${value},"
    done
    printf '%s' "${out%,}"
}

# show_riva_env: the RIVA_* settings in effect, secrets masked.
show_riva_env() {
    local name
    for name in RIVA_URI RIVA_USE_SSL RIVA_LB_POLICY RIVA_SSL_ROOT_CERT; do
        if [ -n "${!name:-}" ]; then printf '  %s=%s\n' "$name" "${!name}"; fi
    done
    if [ -n "${RIVA_METADATA:-}" ]; then
        printf '  RIVA_METADATA=%s\n' "$(mask_metadata "$RIVA_METADATA")"
    fi
}

# arg OPTION VALUE...: fail unless OPTION is followed by a value.
arg() {
    if [ $# -lt 2 ] || [[ $2 == --* ]]; then
        die "$1 needs a value"
    fi
}

# parse_options ARGS...: the options every riva-*.sh takes (--env-file FILE, --dry-run,
# -h/--help), the rest through the script's own script_option function, then the env
# file and the defaults. script_option "$@" handles "$1" (arg checks a value), sets
# OPTION_ARGS to the words it took when not 1, and returns 1 for an option it does not
# know. Words it leaves for the script (after "--") go in REST_ARGS.
parse_options() {
    # shellcheck disable=SC2034  # read by the scripts that take words after "--"
    REST_ARGS=()
    while [ $# -gt 0 ]; do
        OPTION_ARGS=1
        case $1 in
        --env-file) arg "$@" && ENV_FILE=$2 && OPTION_ARGS=2 ;;
        --dry-run) DRY_RUN=1 ;;
        -h | --help) usage && exit 0 ;;
        *) script_option "$@" || { usage >&2 && die "unknown option: $1"; } ;;
        esac
        shift "$OPTION_ARGS"
    done
    load_env "$ENV_FILE"
    # Whether a clip to stream was chosen (flag, environment or env file), before the
    # defaults choose JFK: only JFK's words can be expected by default.
    SMOKE_FILE_CHOSEN=${RIVA_SMOKE_FILE:+1}
    riva_defaults
}

# smoke_expectation: EXPECT for the smoke test; with no clip and no --expect chosen,
# the default clip's (JFK's) robust phrase.
smoke_expectation() {
    if [ -z "${SMOKE_FILE_CHOSEN:-}" ] && [ -z "${EXPECT:-}" ]; then
        EXPECT="ask not what your country can do for you"
    fi
}

# smoke_option ARGS...: --file and --expect, for the scripts that run the smoke test.
smoke_option() {
    case $1 in
    --file) arg "$@" && export RIVA_SMOKE_FILE=$2 && OPTION_ARGS=2 ;;
    --expect) arg "$@" && EXPECT=$2 && OPTION_ARGS=2 ;;
    *) return 1 ;;
    esac
}
