#!/usr/bin/env bash
# Asserts the state of a node after node_provision (ansible/playbooks/node-provision.yml).
# Run as root on the node. Stops at the first failed check with a message and exit 1.
#
# Usage: tests/e2e/check-node.sh [RESULT_JSON | FAIL2BAN_STATUS]
#   RESULT_JSON      the playbook's result file; Fail2Ban and ufw are checked when it says "active"
#   FAIL2BAN_STATUS  "active" checks Fail2Ban; anything else (default) skips it
set -euo pipefail

PY=/usr/bin/python3
WAF_BLOCK=/etc/nginx/sites-enabled/zz-pressluft-waf-test.conf
WAF_HOST=waf-test.invalid
PASS=0

# grep -q in a pipeline can make the writer die of SIGPIPE, which pipefail reports as a failure:
# read the whole input instead.
has() { grep "$@" >/dev/null; }
fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }
ok() { PASS=$((PASS + 1)); printf 'ok   %s\n' "$*"; }

[ "$(id -u)" = 0 ] || fail "run as root"

fail2ban_expected=skip
firewall_expected=skip
if [ $# -ge 1 ]; then
  if [ -f "$1" ]; then
    read -r fail2ban_expected firewall_expected < <(
      "$PY" -c 'import json,sys; r=json.load(open(sys.argv[1])); print(r["fail2ban"]["status"], r["firewall"]["status"])' "$1"
    ) || fail "cannot read fail2ban/firewall status from $1"
  else
    fail2ban_expected=$1
  fi
fi

# --- services --------------------------------------------------------------------------------------
pgrep -x nginx >/dev/null || fail "nginx is not running"
ok "nginx runs"
php_version=$(php -r 'echo PHP_MAJOR_VERSION, ".", PHP_MINOR_VERSION;') || fail "php-cli does not run"
pgrep -f "php-fpm: master process" >/dev/null || fail "php-fpm$php_version is not running"
ok "php-fpm$php_version runs"
mysqladmin ping >/dev/null 2>&1 || fail "MariaDB does not answer mysqladmin ping"
ok "mariadb answers ping"
REDIS_ADMIN=/usr/local/lib/pressluft/redis-admin
[ "$("$REDIS_ADMIN" ping 2>/dev/null)" = PONG ] || fail "Redis does not answer PING (admin user)"
ok "redis answers PING"
pgrep -x cron >/dev/null || fail "cron is not running (certbot renewal without systemd)"
ok "cron runs"
if [ "$fail2ban_expected" = active ]; then
  fail2ban-client ping 2>/dev/null | has pong || fail "Fail2Ban does not answer ping"
  jails=$(fail2ban-client status | sed -n 's/.*Jail list:[[:space:]]*//p')
  for jail in wordpress-login wordpress-xmlrpc nginx-http-auth nginx-botsearch; do
    [[ ", $jails," == *", $jail,"* ]] || fail "Fail2Ban jail $jail is not loaded (jails: $jails)"
  done
  ok "fail2ban runs with its four jails ($jails)"
  test_ip=203.0.113.254 # TEST-NET-3, never a real client
  fail2ban-client set nginx-botsearch banip "$test_ip" >/dev/null || fail "Fail2Ban cannot ban $test_ip"
  banned=0
  for _ in $(seq 1 20); do
    if iptables -w -S | has -- "-s $test_ip/32"; then banned=1; break; fi
    sleep 0.2
  done
  fail2ban-client set nginx-botsearch unbanip "$test_ip" >/dev/null || true
  [ "$banned" = 1 ] || fail "Fail2Ban ban of $test_ip did not reach iptables"
  iptables -w -S | has -- "-s $test_ip/32" && fail "Fail2Ban unban of $test_ip left an iptables rule"
  ok "fail2ban bans through iptables (ban and unban of $test_ip)"
else
  printf 'skip fail2ban (expected status: %s)\n' "$fail2ban_expected"
fi
if [ "$firewall_expected" = active ]; then
  ufw status | has '^Status: active' || fail "ufw is not active"
  for port in 22 80 443; do
    ufw status | has -E "^$port/tcp +ALLOW" || fail "ufw does not allow $port/tcp"
  done
  ok "ufw active, allows 22, 80, 443"
fi

# --- listeners: MariaDB and Redis on localhost only -----------------------------------------------------
listeners=$(ss -Hltn)
awk '{print $4}' <<<"$listeners" | has -E '^127\.0\.0\.1:3306$' || fail "MariaDB does not listen on 127.0.0.1:3306"
! awk '{print $4}' <<<"$listeners" | has -E '^(0\.0\.0\.0|\*|\[::\]):3306$' || fail "MariaDB listens on a public address"
awk '{print $4}' <<<"$listeners" | has -E '^127\.0\.0\.1:6379$' || fail "Redis does not listen on 127.0.0.1:6379"
[ "$(awk '{print $4}' <<<"$listeners" | grep -c ':6379$')" = 1 ] || fail "Redis listens on more than 127.0.0.1"
ok "MariaDB and Redis listen on localhost only"
anon=$(mysql -NBe "SELECT COUNT(*) FROM mysql.user WHERE User=''")
[ "$anon" = 0 ] || fail "MariaDB has $anon anonymous users"
[ -z "$(mysql -NBe "SHOW DATABASES LIKE 'test'")" ] || fail "MariaDB still has the test database"
ok "no anonymous MariaDB users, no test database"
pool=$(mysql -NBe "SELECT @@innodb_buffer_pool_size")
redo=$(mysql -NBe "SELECT @@innodb_log_file_size")
memtotal_mib=$(( $(awk '/^MemTotal:/ {print $2}' /proc/meminfo) / 1024 ))
"$PY" -c 'import sys; p, r, t = (int(a) for a in sys.argv[1:]); mb = max(t * 25 // 100, 128)
sys.exit(0 if mb << 20 <= p <= (mb + 256) << 20 and r == min(max(mb // 4, 96), 2048) << 20 else 1)' \
  "$pool" "$redo" "$memtotal_mib" || fail "MariaDB's buffer pool $pool / redo log $redo are not sized to 25 % of $memtotal_mib MiB RAM"
ok "mariadb: buffer pool $pool bytes, redo log $redo bytes (25 % of RAM, a quarter of it)"

# --- Redis (provisioning.md §8) ---------------------------------------------------------------------------
redis_get() { "$REDIS_ADMIN" --raw CONFIG GET "$1" | sed -n 2p; }
[ "$(redis_get maxmemory-policy)" = allkeys-lru ] || fail "Redis maxmemory-policy is $(redis_get maxmemory-policy), want allkeys-lru"
[ -z "$(redis_get save)" ] || fail "Redis save is '$(redis_get save)', want empty"
[ "$(redis_get appendonly)" = no ] || fail "Redis appendonly is $(redis_get appendonly), want no"
[ "$(redis_get bind)" = 127.0.0.1 ] || fail "Redis bind is '$(redis_get bind)', want 127.0.0.1"
maxmemory=$(redis_get maxmemory)
memtotal_bytes=$(( $(awk '/^MemTotal:/ {print $2}' /proc/meminfo) * 1024 ))
"$PY" -c 'import sys; m, t = int(sys.argv[1]), int(sys.argv[2]); sys.exit(0 if abs(m - t / 10) <= t * 0.01 else 1)' \
  "$maxmemory" "$memtotal_bytes" || fail "Redis maxmemory $maxmemory is not about 10 % of $memtotal_bytes bytes"
ok "redis: allkeys-lru, no persistence, bind 127.0.0.1, maxmemory $maxmemory (10 % of RAM)"
# ACLs: the default user is off, so a client without credentials can do nothing.
for cmd in PING "GET x" "SET pressluft_x:k v" "ACL LIST"; do
  # shellcheck disable=SC2086
  answer=$(redis-cli $cmd 2>&1)
  [[ "$answer" == NOAUTH* ]] || fail "Redis without credentials: $cmd answered '$answer', want NOAUTH"
done
[ "$("$REDIS_ADMIN" --raw CONFIG GET aclfile | sed -n 2p)" = /etc/redis/users.acl ] || fail "Redis has no ACL file"
"$REDIS_ADMIN" ACL LIST | has -E '^user default off ' || fail "the Redis default user is not off: $("$REDIS_ADMIN" ACL LIST | grep '^user default')"
[ "$(stat -c '%U %a' /etc/redis/pressluft-admin.password)" = "root 600" ] || fail "the Redis admin password file is not root-only"
ok "redis: default user off (NOAUTH without credentials), ACL file, admin password root-only"

# --- PHP-FPM (provisioning.md §6) -----------------------------------------------------------------------
fpm_ini=$("php-fpm$php_version" -i 2>/dev/null)
grep -Eq '^disable_functions => exec,passthru,shell_exec,system,proc_open,popen,putenv,pcntl_alarm,[a-z_,]*pcntl_fork,[a-z_,]*pcntl_signal,[a-z_,]* => ' <<<"$fpm_ini" \
  || fail "PHP-FPM disable_functions is not the §6 list (plus putenv, pcntl_*): $(grep '^disable_functions' <<<"$fpm_ini")"
grep -Eq '^expose_php => Off' <<<"$fpm_ini" || fail "PHP-FPM expose_php is not Off"
grep -Eq '^allow_url_include => Off' <<<"$fpm_ini" || fail "PHP-FPM allow_url_include is not Off"
grep -Eq '^allow_url_fopen => On' <<<"$fpm_ini" || fail "PHP-FPM allow_url_fopen is not On"
ok "php-fpm hardening active"
cli_disabled=$(php -r 'echo ini_get("disable_functions");')
[ -z "$cli_disabled" ] || fail "php-cli has disable_functions '$cli_disabled'; the hardening must be FPM-only"
ok "php-cli unaffected by the hardening"
pool_dir=/etc/php/$php_version/fpm/pool.d
[ ! -e "$pool_dir/www.conf" ] || fail "the distribution's www pool still exists"
[ -f "$pool_dir/pressluft-idle.conf" ] || fail "the pressluft-idle pool is missing"
[ "$(stat -c %a /run/php/pressluft-idle.sock 2>/dev/null)" = 600 ] || fail "/run/php/pressluft-idle.sock is missing or not 0600"
ok "only the idle pool (socket 0600)"

# --- users and directories (provisioning.md §4) -----------------------------------------------------------
id pressluft >/dev/null 2>&1 || fail "user pressluft does not exist"
check_dir() { # path owner mode
  [ -d "$1" ] || fail "directory $1 is missing"
  [ "$(stat -c '%U %a' "$1")" = "$2 $3" ] || fail "$1 is $(stat -c '%U %a' "$1"), want $2 $3"
}
check_dir /var/lib/pressluft pressluft 700
check_dir /var/log/pressluft pressluft 750
check_dir /var/www/sites pressluft 755
check_dir /var/backups/pressluft root 700
check_dir /var/www/acme root 755
check_dir /var/cache/nginx/fastcgi www-data 700
ok "pressluft user and directories"

# --- Nginx base (provisioning.md §9, §10) -------------------------------------------------------------------
grep -q 'include /etc/nginx/pressluft/http.d/\*.conf;' /etc/nginx/nginx.conf || fail "nginx.conf does not include pressluft/http.d"
! grep -Eq '^[[:space:]]*include[[:space:]]+/etc/nginx/conf\.d/\*\.conf' /etc/nginx/nginx.conf || fail "nginx.conf includes conf.d/*.conf"
grep -q 'fastcgi_cache_path /var/cache/nginx/fastcgi levels=1:2 keys_zone=WORDPRESS:100m inactive=60m max_size=512m;' /etc/nginx/nginx.conf \
  || fail "nginx.conf lacks the §9 fastcgi_cache_path"
[ ! -e /etc/nginx/sites-enabled/default ] || fail "the distribution's default site is still enabled"
[ -f /etc/nginx/conf.d/7g-exclusions.conf ] || fail "7g-exclusions.conf is missing"
nginx -t -q 2>/dev/null || fail "nginx -t fails"
ok "nginx.conf, default site removed, WAF files present"

set +e
curl -sS -m 5 -o /dev/null -H 'Host: unknown-host.invalid' http://127.0.0.1/ 2>/dev/null
rc=$?
set -e
[ "$rc" = 52 ] || fail "unknown Host on port 80: curl exit $rc, want 52 (empty reply, nginx 444)"
ok "unknown Host on :80 gets no response (444)"
set +e
curl -sS -m 5 -o /dev/null -k --resolve unknown-host.invalid:443:127.0.0.1 https://unknown-host.invalid/ 2>/dev/null
rc=$?
set -e
[ "$rc" = 35 ] || fail "unknown name on port 443: curl exit $rc, want 35 (TLS handshake rejected)"
ok "unknown name on :443: TLS handshake rejected"

# --- WAF and security headers through a temporary server block ----------------------------------------------
# Reloads Nginx and waits until the old workers are gone: until then an old worker may still
# accept a connection and answer with the previous configuration.
reload_nginx() {
  local master old pid alive
  master=$(cat /run/nginx.pid)
  old=$(pgrep -P "$master" -d ' ' || true)
  nginx -s reload 2>/dev/null
  for _ in $(seq 1 100); do
    alive=0
    for pid in $old; do
      if kill -0 "$pid" 2>/dev/null; then alive=1; fi
    done
    [ "$alive" = 0 ] && return 0
    sleep 0.1
  done
  fail "old Nginx workers ($old) still run 10 s after the reload"
}
cleanup_waf() {
  if [ -e "$WAF_BLOCK" ]; then
    rm -f "$WAF_BLOCK"
    if nginx -t -q 2>/dev/null; then reload_nginx; fi
  fi
}
trap cleanup_waf EXIT
cat >"$WAF_BLOCK" <<EOF
# Temporary block of tests/e2e/check-node.sh; removed when the script ends.
server {
    listen 80;
    server_name $WAF_HOST;
    include /etc/nginx/conf.d/7g-firewall.conf;
    include /etc/nginx/conf.d/7g-exclusions.conf;
    if (\$pressluft_7g_block) { return 403; }
    location / { return 200 "ok\n"; }
}
EOF
nginx -t -q 2>/dev/null || fail "nginx -t fails with the WAF test block"
reload_nginx
# curl prints 000 when it gets no HTTP answer (e.g. 444)
code() { curl -s -m 5 -o /dev/null -w '%{http_code}' -H "Host: $WAF_HOST" "$@" || true; }
expect_code() { # want description curl-args...
  local want=$1 what=$2 got
  shift 2
  got=$(code "$@")
  [[ " $want " == *" $got "* ]] || fail "WAF: $what answered $got, want $want"
  ok "WAF: $what -> $got"
}
expect_code 200 "harmless query ?q=hello" 'http://127.0.0.1/?q=hello'
headers=$(curl -s -m 5 -D - -o /dev/null -H "Host: $WAF_HOST" 'http://127.0.0.1/?q=hello' | tr -d '\r' || true)
for h in 'X-Content-Type-Options: nosniff' 'X-Frame-Options: SAMEORIGIN' \
  'Referrer-Policy: strict-origin-when-cross-origin' 'Permissions-Policy: geolocation=(), camera=(), microphone=()'; do
  grep -qiF "$h" <<<"$headers" || fail "security header missing: $h"
done
ok "the four security headers are sent"
expect_code 403 "SQL injection ?q=union+select+1" 'http://127.0.0.1/?q=union+select+1'
expect_code 403 "traversal ?file=../../etc/passwd" 'http://127.0.0.1/?file=../../etc/passwd'
expect_code 403 "script injection in the query" 'http://127.0.0.1/?s=%3Cscript%3Ealert(1)%3C/script%3E'
expect_code 403 "backup probe /wp-config.php.bak" 'http://127.0.0.1/wp-config.php.bak'
expect_code 403 "dump probe /backup.sql" 'http://127.0.0.1/backup.sql'
expect_code 403 "hidden file /.env" 'http://127.0.0.1/.env'
expect_code 403 "admin tool /phpmyadmin/" 'http://127.0.0.1/phpmyadmin/'
expect_code "403 405" "TRACE method" -X TRACE 'http://127.0.0.1/'
expect_code 403 "PUT method" -X PUT 'http://127.0.0.1/'
expect_code 403 "sqlmap user agent" -A 'sqlmap/1.7.2#stable (https://sqlmap.org)' 'http://127.0.0.1/'
expect_code 403 "spam referrer" -e 'http://semalt.com/' 'http://127.0.0.1/'
# shellcheck disable=SC2016 # a literal ${jndi:...}, not a shell expansion
expect_code 403 "log4shell header" -H 'Cookie: a=${jndi:ldap://x/a}' 'http://127.0.0.1/'
expect_code 403 "event handler injection" 'http://127.0.0.1/?x=%3Cimg+src%3Dx+onerror%3Dalert(1)%3E'
# ordinary WordPress requests must pass
expect_code 200 "search ?s=select+a+theme" 'http://127.0.0.1/?s=select+a+theme'
expect_code 200 "callback parameter ?onload=cb" 'http://127.0.0.1/?onload=cb&render=explicit'
expect_code 200 "login redirect" 'http://127.0.0.1/wp-login.php?redirect_to=https%3A%2F%2Fexample.com%2Fwp-admin%2F&reauth=1'
expect_code 200 "admin script loader" 'http://127.0.0.1/wp-admin/load-scripts.php?c=0&load%5Bchunk_0%5D=jquery-core,utils&ver=6.1'
expect_code 200 "REST API" 'http://127.0.0.1/wp-json/wp/v2/posts?_locale=user'
expect_code 200 "ACME challenge path" 'http://127.0.0.1/.well-known/acme-challenge/token'
expect_code 200 "media download /wp-content/uploads/2024/01/file.zip" 'http://127.0.0.1/wp-content/uploads/2024/01/file.zip'
expect_code 200 "POST" -X POST -d 'log=admin' 'http://127.0.0.1/wp-login.php'
cleanup_waf
trap - EXIT
[ ! -e "$WAF_BLOCK" ] || fail "could not remove $WAF_BLOCK"
ok "WAF test block removed, nginx reloaded"

# --- node helper and PHP bridge --------------------------------------------------------------------------------
[ "$(stat -c '%U %a' /usr/local/bin/pressluft)" = "root 755" ] || fail "/usr/local/bin/pressluft is not root 0755"
/usr/local/bin/pressluft --version >/dev/null || fail "/usr/local/bin/pressluft --version fails"
ok "node helper: $(/usr/local/bin/pressluft --version)"
bridge=/usr/local/lib/pressluft/php/bridge.php
[ "$(stat -c '%U %a' "$bridge")" = "root 644" ] || fail "$bridge is not root 0644"
out=$(php "$bridge" version) || fail "bridge version exits non-zero: $out"
"$PY" -c 'import json,sys; d=json.loads(sys.argv[1]); assert d["bridge_version"] and d["php_version"]' "$out" \
  || fail "bridge version does not print the expected JSON: $out"
ok "bridge version: $out"
set +e
out=$(php "$bridge" no-such-command)
rc=$?
set -e
[ "$rc" != 0 ] || fail "bridge accepts an unknown command"
"$PY" -c 'import json,sys; assert "error" in json.loads(sys.argv[1])' "$out" || fail "bridge error is not JSON: $out"
ok "bridge rejects unknown commands: $out"
db_suffix=$(head -c 4 /dev/urandom | od -An -tx1 | tr -d ' \n')
db_name=pl_check_$db_suffix
db_password=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
mysql -e "CREATE DATABASE \`$db_name\`; CREATE USER '$db_name'@'localhost' IDENTIFIED BY '$db_password';
          GRANT ALL ON \`$db_name\`.* TO '$db_name'@'localhost';"
set +e
out=$(PRESSLUFT_DB_HOST=localhost PRESSLUFT_DB_NAME=$db_name PRESSLUFT_DB_USER=$db_name PRESSLUFT_DB_PASSWORD=$db_password \
  runuser -u nobody -- php "$bridge" db-ping)
rc=$?
bad=$(PRESSLUFT_DB_HOST=127.0.0.1 PRESSLUFT_DB_NAME=$db_name PRESSLUFT_DB_USER=$db_name PRESSLUFT_DB_PASSWORD=wrong \
  php "$bridge" db-ping)
bad_rc=$?
set -e
mysql -e "DROP USER '$db_name'@'localhost'; DROP DATABASE \`$db_name\`;"
[ "$rc" = 0 ] || fail "bridge db-ping failed: $out"
"$PY" -c 'import json,sys; assert json.loads(sys.argv[1])["ok"] is True' "$out" || fail "bridge db-ping JSON: $out"
ok "bridge db-ping: $out"
[ "$bad_rc" != 0 ] || fail "bridge db-ping succeeds with a wrong password"
ok "bridge db-ping with a wrong password fails: $bad"

# --- sshd and certbot ----------------------------------------------------------------------------------------------
sshd -T -C user=root,host=localhost,addr=127.0.0.1 2>/dev/null | has -x 'passwordauthentication no' \
  || fail "sshd allows password authentication"
ok "sshd: PasswordAuthentication no"
hook=/etc/letsencrypt/renewal-hooks/deploy/pressluft-reload-nginx.sh
[ -x "$hook" ] || fail "certbot deploy hook $hook missing or not executable"
command -v certbot >/dev/null || fail "certbot is not installed"
ok "certbot with the Nginx reload deploy hook"

printf '%s passed, 0 failed\n' "$PASS"
