#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Stop and remove the Riva ASR NIM container that riva-deploy.sh started; optionally
# remove the model cache and log out of the registry.
set -euo pipefail
SCRIPT_NAME=$(basename "$0")
# shellcheck source=lib/riva-common.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/riva-common.sh"

usage() {
    cat <<EOF
Usage: $SCRIPT_NAME [options]

Stop the container NIM_CONTAINER_NAME (open streams get --grace seconds to finish), remove
it, and optionally clean up.

Options:
  --env-file FILE   settings file of KEY=VALUE lines (default: .env of the repository)
  --name NAME       NIM_CONTAINER_NAME (default riva-asr)
  --grace SECONDS   time between SIGTERM and SIGKILL (default 30)
  --purge-cache     also delete NIM_CACHE_DIR (downloaded models and built engines; the
                    next deploy downloads them again, which can take many minutes)
  --logout          also docker logout from the NIM registry
  --dry-run         print the commands instead of running them
  -h, --help        show this help
EOF
}

ENV_FILE="$RIVA_REPO/.env"
GRACE=30
PURGE=0
LOGOUT=0
script_option() {
    case $1 in
    --name) arg "$@" && export NIM_CONTAINER_NAME=$2 && OPTION_ARGS=2 ;;
    --grace) arg "$@" && GRACE=$2 && OPTION_ARGS=2 ;;
    --purge-cache) PURGE=1 ;;
    --logout) LOGOUT=1 ;;
    *) return 1 ;;
    esac
}
parse_options "$@"

if [ "$DRY_RUN" = 1 ] || docker container inspect "$NIM_CONTAINER_NAME" >/dev/null 2>&1; then
    run docker stop --time "$GRACE" "$NIM_CONTAINER_NAME"
    run docker rm "$NIM_CONTAINER_NAME"
else
    log "no container named $NIM_CONTAINER_NAME"
fi

if [ "$PURGE" = 1 ]; then
    cache=${NIM_CACHE_DIR%/}
    # Refuse paths whose removal would be a disaster rather than a cleanup.
    case $cache in
    '' | / | "$HOME" | /root | /home | /opt | /var | /tmp) die "refusing to delete NIM_CACHE_DIR=$NIM_CACHE_DIR" ;;
    esac
    run rm -rf -- "$cache"
fi

if [ "$LOGOUT" = 1 ]; then
    run docker logout "${NIM_IMAGE%%/*}"
fi
if [ "$DRY_RUN" = 1 ]; then log "dry run: nothing was changed"; fi
