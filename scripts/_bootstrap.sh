# Shared set-up steps for scripts/*: a virtualenv with the package, and a Redis to talk to.
# Sourced, not run.

PYTHON=${PYTHON:-python3}

# ensure_venv [EXTRAS]: .venv with the package and the given extras (e.g. "dev,bench").
ensure_venv() {
    local extras=${1:-}
    if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
        echo "error: Python 3.11+ is required (set PYTHON=/path/to/python3.11)" >&2
        exit 1
    fi
    if [ ! -x .venv/bin/python ]; then
        echo "== creating .venv"
        "$PYTHON" -m venv .venv
    fi
    # Reinstall only when the project's dependencies changed; without extras, an install
    # with any extras (a superset) will do.
    local deps
    deps=$(sha1sum pyproject.toml | cut -c1-12)
    local stamp=.venv/.installed-$deps-${extras:-base}
    if [ -f "$stamp" ] || { [ -z "$extras" ] && compgen -G ".venv/.installed-$deps-*" >/dev/null; }; then
        return 0
    fi
    echo "== installing rag-indexer-service${extras:+ with [$extras]} into .venv (about a minute the first time)"
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -e ".${extras:+[$extras]}"
    find .venv -maxdepth 1 -name '.installed-*' ! -name ".installed-$deps-*" -delete
    touch "$stamp"
    echo "== installed"
}

apt_install() {
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
    else
        sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
    fi
}

# The console's browser tests drive Debian's Chromium through its chromedriver; DejaVu fonts
# render Cyrillic in the headless browser.
ensure_browser() {
    if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ] && [ -d /usr/share/fonts/truetype/dejavu ]; then
        return 0
    fi
    echo "== installing chromium, chromium-driver and fonts-dejavu-core (browser tests)"
    apt_install chromium chromium-driver fonts-dejavu-core
}

redis_listening() {
    .venv/bin/python - "$1" <<'PY'
import socket, sys
from urllib.parse import urlsplit
url = urlsplit(sys.argv[1])
try:
    socket.create_connection((url.hostname or "127.0.0.1", url.port or 6379), timeout=1).close()
except OSError:
    sys.exit(1)
PY
}

ensure_redis() {
    local url=${RAG_TEST_BROKER_URL:-redis://127.0.0.1:6379/0}
    redis_listening "$url" && return 0
    if ! command -v redis-server >/dev/null; then
        echo "== installing redis-server"
        apt_install redis-server
    fi
    echo "== starting redis-server on 127.0.0.1:6379"
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
        --dir /tmp --logfile /tmp/rag-indexer-redis.log
    for _ in $(seq 50); do
        redis_listening "$url" && return 0
        sleep 0.1
    done
    echo "error: redis did not start (see /tmp/rag-indexer-redis.log)" >&2
    exit 1
}
