#!/usr/bin/env bash
# Test of install.sh (architecture.md §8) on this machine, run as root by CI after the cargo tests.
#
#   tests/install/check.sh /path/to/pressluft
#
# DESTRUCTIVE, for disposable machines (it refuses, like scripts/test, when /var/lib/pressluft
# holds data and PRESSLUFT_TEST_DISPOSABLE=1 is not set): it stops any running `pressluft serve`, removes /var/lib/pressluft,
# /etc/pressluft and /var/log/pressluft and the old control-plane keys in /root/.ssh/authorized_keys,
# then installs twice (the second run must report 0 changes) and a third time without options, and
# checks: one serve process, one admin, the key authorized once, login and exactly one node, the
# local one. HTTPS from the first minute (issue 15): with Pebble (scripts/acme-test-server; its BIND
# resolves 192-0-2-2.sslip.io to 192.0.2.2) as the ACME server, the dashboard answers on
# https://192-0-2-2.sslip.io with a Pebble certificate, http:// redirects, the control plane listens
# on loopback only (192.0.2.2:8080 refuses), the session cookie is Secure and HSTS is sent. Then the
# fallback: with an unreachable ACME directory and no certificate, a run serves plain HTTP on
# 0.0.0.0:8080 with the warning banner, and the next run with Pebble moves it back behind nginx.
# The dashboard's certificate and server block are removed at the end (nginx left as found). The service's first start enqueues the local node's provisioning (Ansible
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
readonly PUBLIC_IP=192.0.2.2
readonly NAME=192-0-2-2.sslip.io
readonly BASE=http://127.0.0.1:8080 # serve's default listener: loopback
readonly HTTPS=https://$NAME
readonly CP_CONF=/etc/nginx/sites-enabled/pressluft-control-plane.conf
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
# Pebble and its BIND (idempotent when running): the ACME server of this test.
"$repo/scripts/acme-test-server" >/dev/null
# shellcheck source=/dev/null
. /var/lib/pressluft-test/acme/env
CURL_TLS=(--resolve "$NAME:443:$PUBLIC_IP" --resolve "$NAME:80:$PUBLIC_IP" --cacert "$ACME_ISSUING_ROOT")
# The dashboard's nginx block and certificate: removed before and after (this machine's nginx also
# serves the e2e's sites; nothing else is touched).
remove_dashboard_tls() {
  if [ -e "/etc/letsencrypt/live/$NAME" ] || [ -e "/etc/letsencrypt/renewal/$NAME.conf" ]; then
    certbot delete --non-interactive --cert-name "$NAME" >/dev/null 2>&1 || true
  fi
  if [ -e "$CP_CONF" ]; then
    rm -f "$CP_CONF"
    nginx -t -q && nginx -s reload
  fi
}

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
  say "removing the dashboard's server block and certificate"
  remove_dashboard_tls
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
remove_dashboard_tls
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
args=(--binary "$binary" --env PRESSLUFT_MANAGE_FIREWALL=false --public-ip "$PUBLIC_IP"
  --acme-directory-url "$ACME_DIRECTORY_URL" --acme-ca-bundle "$ACME_CA_BUNDLE" --acme-email "$EMAIL"
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
! grep -q '^PRESSLUFT_LISTEN_ADDR=' "$ENV_FILE" || fail "$ENV_FILE sets PRESSLUFT_LISTEN_ADDR (serve's loopback default expected)"
grep -qx "PRESSLUFT_PUBLIC_IP=$PUBLIC_IP" "$ENV_FILE" || fail "$ENV_FILE lacks PRESSLUFT_PUBLIC_IP=$PUBLIC_IP (--public-ip)"
grep -qx 'PRESSLUFT_PROXY_SOCKET=/run/pressluft/proxy.sock' "$ENV_FILE" || fail "$ENV_FILE lacks PRESSLUFT_PROXY_SOCKET=/run/pressluft/proxy.sock"
! grep -q '^PRESSLUFT_TRUSTED_PROXY=' "$ENV_FILE" || fail "$ENV_FILE trusts a TCP proxy by default (any local process could then choose its X-Forwarded-For)"
[ "$(stat -c '%U:%G %a' /run/pressluft)" = "pressluft:www-data 2750" ] || fail "/run/pressluft is not pressluft:www-data 2750"
ok "directories, binary and $ENV_FILE: $(grep -v '^#' "$ENV_FILE" | tr '\n' ' ')"

# Safe updates (issue 16) take screenshots with the distribution's chromium: installed by step 2.
[ "$(dpkg-query -W -f='${db:Status-Status}' chromium 2>/dev/null || true)" = installed ] || fail "package chromium is not installed"
chromium_version=$(/usr/lib/chromium/chromium --version 2>/dev/null) || fail "/usr/lib/chromium/chromium --version fails"
ok "chromium installed: $chromium_version"

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
say "HTTPS for the dashboard"
grep -q "server_name $NAME;" "$CP_CONF" || fail "$CP_CONF does not serve $NAME"
code=$(curl -sS -o "$work/login.html" -w '%{http_code}' "${CURL_TLS[@]}" "$HTTPS/login") ||
  fail "GET $HTTPS/login with Pebble's root as the only trusted CA failed"
[ "$code" = 200 ] || fail "GET $HTTPS/login: HTTP $code"
issuer=$(openssl s_client -connect "$PUBLIC_IP:443" -servername "$NAME" </dev/null 2>/dev/null |
  openssl x509 -noout -issuer)
grep -qi pebble <<<"$issuer" || fail "the certificate of $NAME is not Pebble's: $issuer"
ok "GET $HTTPS/login: 200 over TLS, certificate verified against Pebble's root ($issuer)"
location=$(curl -sS -o /dev/null -w '%{http_code} %{redirect_url}' "${CURL_TLS[@]}" "http://$NAME/login?x=1")
[ "$location" = "301 $HTTPS/login?x=1" ] || fail "http://$NAME/login?x=1 answered $location, expected 301 to $HTTPS/login?x=1"
ok "http://$NAME/ redirects to https (301, same path)"
listeners=$(ss -Htln "sport = :8080" | awk '{ print $4 }' | sort -u | tr '\n' ' ')
[ "$listeners" = "127.0.0.1:8080 " ] || fail "port 8080 listeners: '$listeners', expected 127.0.0.1:8080 only"
rc=0
curl -sS --max-time 5 -o /dev/null "http://$PUBLIC_IP:8080/healthz" 2>"$work/refused.err" || rc=$?
# curl's exit 7: the connection was refused (nothing listens there), not a timeout or an answer.
[ "$rc" = 7 ] || fail "http://$PUBLIC_IP:8080: curl exit $rc, expected 7 (refused): $(cat "$work/refused.err")"
ok "$PUBLIC_IP:8080 refuses connections; the control plane listens on 127.0.0.1:8080 only"

jar=$work/cookies
body=$(python3 -c 'import json,sys; print(json.dumps({"email": sys.argv[1], "password": sys.stdin.readline().rstrip("\n")}))' \
  "$EMAIL" <<<"$password")
code=$(curl -sS -o "$work/login.json" -D "$work/login.headers" -w '%{http_code}' -c "$jar" \
  "${CURL_TLS[@]}" -H 'Content-Type: application/json' --data-binary @- "$HTTPS/api/login" <<<"$body")
[[ $code == 2?? ]] || fail "POST $HTTPS/api/login: HTTP $code $(cat "$work/login.json")"
cookie=$(grep -i '^set-cookie: session_token=' "$work/login.headers" | tr -d '\r')
[[ $cookie == *"; Secure"* ]] || fail "the session cookie lacks Secure: $cookie"
hsts=$(grep -i '^strict-transport-security:' "$work/login.headers" | tr -d '\r')
[ -n "$hsts" ] || fail "no Strict-Transport-Security over HTTPS: $(cat "$work/login.headers")"
ok "logged in as $EMAIL over HTTPS: cookie Secure ($cookie), $hsts"
if curl -sS -D - -o /dev/null "$BASE/healthz" | grep -qi '^strict-transport-security'; then
  fail "HSTS sent over plain HTTP"
fi
if grep -q 'data-test="plain-http-banner"' "$work/login.html"; then
  fail "the plain-HTTP banner shows over HTTPS"
fi
ok "no HSTS over plain HTTP; no plain-HTTP banner over HTTPS"
nodes=
for _ in $(seq 1 20); do # the local node is registered at start-up; allow a moment
  nodes=$(curl -fsS -b "$jar" "${CURL_TLS[@]}" "$HTTPS/api/nodes")
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
api_key=$(curl -fsS -b "$jar" "${CURL_TLS[@]}" "$HTTPS/api/nodes/ssh-public-key" | python3 -c 'import json,sys; print(json.load(sys.stdin)["public_key"])')
[ "$(awk '{ print $2 }' <<<"$api_key")" = "$blob" ] || fail "GET /api/nodes/ssh-public-key differs from the authorized key"
ok "GET /api/nodes/ssh-public-key is the authorized key"

say "the service's first node_provision (the local node, same control-plane vhost): waiting for it"
# It runs the same roles in the background; the fallback below must not race it.
node=
for _ in $(seq 1 360); do
  node=$(curl -fsS -b "$jar" "${CURL_TLS[@]}" "$HTTPS/api/nodes")
  status=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])[0]["status"])' "$node")
  [ "$status" = provisioning ] || break
  sleep 5
done
python3 -c '
import json, sys
n = json.loads(sys.argv[1])[0]
assert n["status"] == "active", n
assert n["provision_warning"] is None, n' "$node" || fail "the local node after its node_provision: $node"
grep -q "server_name $NAME;" "$CP_CONF" && grep -q 'listen 443 ssl' "$CP_CONF" || fail "node_provision changed $CP_CONF"
ok "node_provision converged on the same HTTPS server block, no warning"

say "fallback: no certificate can be issued (unreachable ACME directory)"
certbot delete --non-interactive --cert-name "$NAME" >/dev/null 2>&1 || fail "certbot delete --cert-name $NAME"
run_install 4 "$work/run4.log" --binary "$binary" --acme-directory-url https://127.0.0.1:9/directory </dev/null
grep -q 'Pressluft is running over PLAIN HTTP' "$work/run4.log" || fail "run 4 did not report the plain-HTTP fallback"
grep -qx 'PRESSLUFT_LISTEN_ADDR=0.0.0.0:8080' "$ENV_FILE" || fail "run 4 did not write the fallback listen address"
! grep -q "listen 443" "$CP_CONF" || fail "$CP_CONF still has a TLS block without a certificate"
page=$(curl -fsS "http://$PUBLIC_IP:8080/login") || fail "GET http://$PUBLIC_IP:8080/login in the fallback"
grep -q 'data-test="plain-http-banner"' <<<"$page" || fail "no plain-HTTP banner on http://$PUBLIC_IP:8080/login"
grep -q 'This dashboard is served over plain HTTP' <<<"$page" || fail "the banner lacks its text"
if curl -fsS "$BASE/login" | grep -q 'data-test="plain-http-banner"'; then
  fail "the banner shows to a loopback client (an SSH tunnel)"
fi
ok "fallback: plain HTTP on 0.0.0.0:8080, the banner on http://$PUBLIC_IP:8080/login, none over loopback"

say "back to HTTPS once a certificate can be issued"
run_install 5 "$work/run5.log" --binary "$binary" --acme-directory-url "$ACME_DIRECTORY_URL" </dev/null
grep -q "Pressluft is running: $HTTPS/" "$work/run5.log" || fail "run 5 did not move the dashboard back to HTTPS"
! grep -q '^PRESSLUFT_LISTEN_ADDR=' "$ENV_FILE" || fail "run 5 kept the fallback listen address"
[ "$(curl -sS -o /dev/null -w '%{http_code}' "${CURL_TLS[@]}" "$HTTPS/login")" = 200 ] || fail "GET $HTTPS/login after run 5"
rc=0
curl -sS --max-time 5 -o /dev/null "http://$PUBLIC_IP:8080/healthz" 2>/dev/null || rc=$?
[ "$rc" = 7 ] || fail "http://$PUBLIC_IP:8080 after run 5: curl exit $rc, expected 7 (refused)"
run_install 6 "$work/run6.log" --binary "$binary" </dev/null
grep -Eq '^install: 0 changes' "$work/run6.log" || fail "run 6 changed something: $(grep -E '^install: ' "$work/run6.log")"
ok "HTTPS again, loopback only, and a further run: 0 changes"
