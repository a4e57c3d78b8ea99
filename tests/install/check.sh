#!/usr/bin/env bash
# Test of install.sh (architecture.md §8) on this machine, run as root by CI after the cargo tests.
#
#   tests/install/check.sh /path/to/pressluft
#
# DESTRUCTIVE, for disposable machines (it refuses, like scripts/test, when /var/lib/pressluft
# holds data and PRESSLUFT_TEST_DISPOSABLE=1 is not set): it stops any running `pressluft serve`, removes /var/lib/pressluft,
# /etc/pressluft and /var/log/pressluft and the old control-plane keys in /root/.ssh/authorized_keys,
# then installs twice (the second run must report 0 changes) and a third time without options, and
# checks: one serve process, one admin, the key authorized once, login over HTTP and exactly one
# node, the local one. The service's first start enqueues the local node's provisioning (Ansible
# against root@127.0.0.1, minutes long); the test does not wait for it and stops the service (and
# what it started) at the end. The installation itself is left in place, stopped.
set -euo pipefail

[ $# = 1 ] || { echo "usage: $0 /path/to/pressluft" >&2; exit 64; }
repo=$(cd "$(dirname "$0")/../.." && pwd)
installer=$repo/install.sh
binary=$(readlink -f "$1")
readonly BIN=/usr/local/bin/pressluft
readonly PID_FILE=/run/pressluft.pid
readonly ENV_FILE=/etc/pressluft/pressluft.env
readonly EMAIL=admin@install.test
readonly LISTEN=127.0.0.1:18080
readonly BASE=http://$LISTEN
password="install-check-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"

say() { printf '\n==> %s\n' "$*"; }
ok() { printf 'ok: %s\n' "$*"; }
fail() {
  printf 'FAIL: %s\n' "$*" >&2
  exit 1
}

[ "$(id -u)" = 0 ] || fail "run as root"
# Before removing anything: never a real installation's data.
"$repo/scripts/refuse-real-installation" tests/install/check.sh
[ -x "$binary" ] || fail "$binary is not an executable file"
[ -x "$installer" ] || fail "$installer missing or not executable"
work=$(mktemp -d /tmp/pressluft-install-check.XXXXXX)

# A `pressluft serve` started from the installed binary (or an older, replaced copy of it).
is_serve() {
  local pid=$1 exe
  [ -e "/proc/$pid" ] || return 1
  exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 1
  [[ $exe == "$BIN" || $exe == "$BIN (deleted)" ]] || return 1
  [ "$(tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | sed -n 2p)" = serve ]
}
serve_pids() {
  local p
  for p in /proc/[0-9]*; do
    if is_serve "${p#/proc/}"; then printf '%s\n' "${p#/proc/}"; fi
  done
}
# Stops every `pressluft serve` of the installed binary and whatever it started in its session
# (the background start uses setsid: the session id is the serve pid); by pid, never by name.
stop_service() {
  local pid sid left
  if [ -d /run/systemd/system ] && [ -f /etc/systemd/system/pressluft.service ]; then
    systemctl stop pressluft.service || true
  fi
  for pid in $(serve_pids); do
    sid=$(ps -o sid= -p "$pid" | tr -d ' ')
    echo "stopping pressluft serve pid $pid (session $sid)"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 60); do
      [ -e "/proc/$pid" ] || break
      sleep 0.5
    done
    if [ -e "/proc/$pid" ]; then kill -KILL "$pid" 2>/dev/null || true; fi
    if [ -n "$sid" ] && [ "$sid" != 0 ]; then
      left=$(ps -o pid= -s "$sid" | tr -d ' ' | tr '\n' ' ' || true)
      if [ -n "${left// /}" ]; then
        echo "stopping what it started (session $sid): $left"
        # shellcheck disable=SC2086 # a list of pids
        kill -TERM $left 2>/dev/null || true
      fi
    fi
  done
  # Ansible's SSH control masters (ControlPersist) of user pressluft outlive the run by 60 s.
  for pid in $(pgrep -u pressluft -f '^ssh: /var/lib/pressluft/\.ansible/cp/' || true); do
    echo "stopping the SSH control master pid $pid of user pressluft"
    kill -TERM "$pid" 2>/dev/null || true
  done
  rm -f "$PID_FILE"
}
finish() {
  local status=$?
  set +e
  say "stopping the service"
  stop_service
  [ -z "$(serve_pids)" ] || echo "WARNING: a pressluft serve process is still running" >&2
  if [ "$status" = 0 ]; then
    rm -rf "$work"
    echo "install check passed; the installation stays in place, stopped (start it again by re-running install.sh)"
  else
    echo "install check FAILED; logs kept in $work" >&2
  fi
  exit "$status"
}
trap finish EXIT

as_pressluft() { # the installed binary as user pressluft with the service's environment
  local vars=()
  mapfile -t vars < <(grep -E '^[A-Za-z_][A-Za-z0-9_]*=' "$ENV_FILE")
  (cd / && setpriv --reuid=pressluft --regid=pressluft --init-groups \
    env -i HOME=/var/lib/pressluft PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    "${vars[@]}" RUST_LOG=warn "$BIN" "$@")
}

say "clean slate (CI machine): stopping pressluft serve, removing /var/lib/pressluft /etc/pressluft /var/log/pressluft"
stop_service
rm -rf /var/lib/pressluft /etc/pressluft /var/log/pressluft
if [ -f /root/.ssh/authorized_keys ] && grep -q ' pressluft-control-plane$' /root/.ssh/authorized_keys; then
  echo "removing old pressluft-control-plane keys from /root/.ssh/authorized_keys"
  grep -v '^from="127.0.0.1,::1" ssh-[a-z0-9-]* [A-Za-z0-9+/=]* pressluft-control-plane$' \
    /root/.ssh/authorized_keys >"$work/authorized_keys" || true
  cat "$work/authorized_keys" >/root/.ssh/authorized_keys
fi

run_install() { # N LOG [ARGS...]: runs the installer, prints its output and duration
  local n=$1 log=$2 start ms status=0
  shift 2
  say "install.sh, run $n: $*"
  start=$(date +%s%N)
  "$installer" "$@" >"$log" 2>&1 || status=$?
  cat "$log"
  ms=$((($(date +%s%N) - start) / 1000000))
  printf -- '--- run %s: exit %s, %d.%d s\n' "$n" "$status" $((ms / 1000)) $((ms % 1000 / 100))
  [ "$status" = 0 ] || fail "install.sh run $n failed (exit $status)"
}
args=(--binary "$binary" --env PRESSLUFT_MANAGE_FIREWALL=false --env "PRESSLUFT_LISTEN_ADDR=$LISTEN"
  --admin-email "$EMAIL" --admin-password-stdin)
printf '%s\n' "$password" | run_install 1 "$work/run1.log" "${args[@]}"
grep -Eq '^install: [1-9][0-9]* changes?$' "$work/run1.log" || fail "run 1 reports no changes on a clean slate"
printf '%s\n' "$password" | run_install 2 "$work/run2.log" "${args[@]}"
grep -Eq '^install: 0 changes' "$work/run2.log" || fail "run 2 changed something: $(grep -E '^install: ' "$work/run2.log")"
ok "second run: 0 changes"
run_install 3 "$work/run3.log" --binary "$binary" </dev/null
grep -Eq '^install: 0 changes' "$work/run3.log" ||
  fail "run 3 (no --env, no admin options) changed something: $(grep -E '^install: ' "$work/run3.log")"
ok "third run without options: 0 changes (earlier --env values kept)"

say "checks"
mapfile -t pids < <(serve_pids)
[ "${#pids[@]}" = 1 ] || fail "expected exactly one pressluft serve process, found ${#pids[@]}: ${pids[*]}"
[ "$(cat "$PID_FILE" 2>/dev/null || true)" = "${pids[0]}" ] || [ -d /run/systemd/system ] ||
  fail "$PID_FILE does not hold the serve pid ${pids[0]}"
[ "$(stat -c %U "/proc/${pids[0]}")" = pressluft ] || fail "pressluft serve does not run as user pressluft"
ok "exactly one pressluft serve process (pid ${pids[0]}, user pressluft)"

[ "$(stat -c '%U %a' /var/lib/pressluft)" = "pressluft 700" ] || fail "/var/lib/pressluft is not pressluft 0700"
[ "$(stat -c '%U %a' /var/log/pressluft)" = "pressluft 750" ] || fail "/var/log/pressluft is not pressluft 0750"
[ "$(stat -c '%U %a' "$BIN")" = "root 755" ] || fail "$BIN is not root 0755"
cmp -s "$binary" "$BIN" || fail "$BIN differs from $binary"
grep -qx 'PRESSLUFT_MANAGE_FIREWALL=false' "$ENV_FILE" || fail "$ENV_FILE lacks PRESSLUFT_MANAGE_FIREWALL=false"
grep -qx "PRESSLUFT_LISTEN_ADDR=$LISTEN" "$ENV_FILE" || fail "$ENV_FILE lacks PRESSLUFT_LISTEN_ADDR=$LISTEN"
grep -Eqx 'PRESSLUFT_PUBLIC_IP=[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+' "$ENV_FILE" || fail "$ENV_FILE has no detected PRESSLUFT_PUBLIC_IP"
grep -qx 'PRESSLUFT_PROXY_SOCKET=/run/pressluft/proxy.sock' "$ENV_FILE" || fail "$ENV_FILE lacks PRESSLUFT_PROXY_SOCKET=/run/pressluft/proxy.sock"
! grep -q '^PRESSLUFT_TRUSTED_PROXY=' "$ENV_FILE" || fail "$ENV_FILE trusts a TCP proxy by default (any local process could then choose its X-Forwarded-For)"
[ "$(stat -c '%U:%G %a' /run/pressluft)" = "pressluft:www-data 2750" ] || fail "/run/pressluft is not pressluft:www-data 2750"
ok "directories, binary and $ENV_FILE: $(grep -v '^#' "$ENV_FILE" | tr '\n' ' ')"

version=$(ansible-playbook --version) # no `| head`: Ansible dies of SIGPIPE noisily
ok "${version%%$'\n'*}"

admins=$(as_pressluft admin list | grep -E '^[^[:space:]@]+@[^[:space:]@]+$' || true)
[ "$admins" = "$EMAIL" ] || fail "expected exactly one admin $EMAIL, got: ${admins:-none}"
ok "exactly one admin: $admins"

pub=$(cat /var/lib/pressluft/secrets/ssh/control_plane_ed25519.pub)
blob=$(awk '{ print $2 }' <<<"$pub")
[ -n "$blob" ] || fail "no public key in /var/lib/pressluft/secrets/ssh/control_plane_ed25519.pub"
[ "$(grep -cF -- "$blob" /root/.ssh/authorized_keys)" = 1 ] || fail "the key is not in /root/.ssh/authorized_keys exactly once"
grep -qxF -- "from=\"127.0.0.1,::1\" $pub" /root/.ssh/authorized_keys || fail "the key line lacks from=\"127.0.0.1,::1\""
ok "control-plane key authorized for root exactly once, from=\"127.0.0.1,::1\""

curl -fsS "$BASE/healthz" | grep -q '"status":"ok"' || fail "GET /healthz"
sock=/run/pressluft/proxy.sock
[ -S "$sock" ] && [ "$(stat -c '%U:%G %a' "$sock")" = "pressluft:www-data 660" ] ||
  fail "$sock is not a socket pressluft:www-data 0660: $(stat -c '%F %U:%G %a' "$sock" 2>&1)"
runuser -u www-data -- curl -fsS --unix-socket "$sock" http://localhost/healthz | grep -q '"status":"ok"' ||
  fail "GET /healthz over $sock as www-data (nginx's user)"
if runuser -u nobody -- curl -sS --unix-socket "$sock" http://localhost/healthz >/dev/null 2>"$work/nobody.err"; then
  fail "user nobody (not in www-data) reached $sock"
fi
ok "proxy socket $sock: pressluft:www-data 0660, reachable by www-data, not by nobody"
jar=$work/cookies
body=$(python3 -c 'import json,sys; print(json.dumps({"email": sys.argv[1], "password": sys.stdin.readline().rstrip("\n")}))' \
  "$EMAIL" <<<"$password")
code=$(curl -sS -o "$work/login.json" -w '%{http_code}' -c "$jar" -H 'Content-Type: application/json' \
  --data-binary @- "$BASE/api/login" <<<"$body")
[[ $code == 2?? ]] || fail "POST /api/login: HTTP $code $(cat "$work/login.json")"
ok "logged in as $EMAIL over HTTP"
nodes=
for _ in $(seq 1 20); do # the local node is registered at start-up; allow a moment
  nodes=$(curl -fsS -b "$jar" "$BASE/api/nodes")
  [ "$nodes" != "[]" ] && break
  sleep 0.5
done
python3 - "$nodes" <<'EOF' || fail "GET /api/nodes: expected exactly one node with is_local true, got $nodes"
import json, sys
nodes = json.loads(sys.argv[1])
assert isinstance(nodes, list) and len(nodes) == 1, nodes
assert nodes[0]["is_local"] is True, nodes
EOF
grep -q '"is_local":true' <<<"$nodes" || fail "GET /api/nodes: no \"is_local\":true in $nodes"
ok "GET /api/nodes: exactly one node, the local one: $nodes"
api_key=$(curl -fsS -b "$jar" "$BASE/api/nodes/ssh-public-key" | python3 -c 'import json,sys; print(json.load(sys.stdin)["public_key"])')
[ "$(awk '{ print $2 }' <<<"$api_key")" = "$blob" ] || fail "GET /api/nodes/ssh-public-key differs from the authorized key"
ok "GET /api/nodes/ssh-public-key is the authorized key"
