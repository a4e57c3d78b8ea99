#!/usr/bin/env bash
# Removes what a site's environments created on this node, without a final backup and without
# touching the control plane's rows: the clean-up of benchmarks and of a killed end-to-end run.
# The product deletes environments and sites itself (DELETE /api/environments/{id},
# DELETE /api/sites/{id}: `pressluft node env-delete`, src/node_helper/delete.rs), and the
# end-to-end flow uses that; this script stays for what has no control plane to ask.
# Removes databases and users, PHP-FPM pools, server blocks, Linux users, Redis ACL users and
# keys, and the site directory.
# Usage: remove-site.sh <site_id> <environment_id>...
set -euo pipefail
[ "$#" -ge 2 ] || { echo "usage: $0 <site_id> <environment_id>..." >&2; exit 2; }
uuid='^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
site="$1"; shift
[[ "$site" =~ $uuid ]] || { echo "not a site id: $site" >&2; exit 2; }
for env in "$@"; do
  [[ "$env" =~ $uuid ]] || { echo "not an environment id: $env" >&2; exit 2; }
  u8="${env:0:8}"
  mysql -e "DROP DATABASE IF EXISTS wp_${u8}; DROP USER IF EXISTS 'wp_${u8}'@'localhost';"
  rm -f /etc/php/*/fpm/pool.d/"pressluft-${env}.conf" "/etc/nginx/sites-enabled/pressluft-env-${env}.conf"
  redis_admin=/usr/local/lib/pressluft/redis-admin
  "$redis_admin" --scan --pattern "pressluft_${env}:*" | xargs -r "$redis_admin" unlink >/dev/null
  rm -f "/etc/redis/acl.d/env-${env}.acl"
done
# The pools go first, so no PHP-FPM worker runs as an environment's user when it is deleted.
for fpm in /etc/init.d/php*-fpm; do [ -x "$fpm" ] && service "$(basename "$fpm")" reload >/dev/null; done
service nginx reload >/dev/null
for env in "$@"; do
  u8="${env:0:8}"
  if id "pl_${u8}" >/dev/null 2>&1; then
    # A reloaded pool's workers finish their request first; anything left is stopped.
    for _ in 1 2 3 4 5 6 7 8 9 10; do pgrep -u "pl_${u8}" >/dev/null || break; sleep 0.5; done
    pkill -KILL -u "pl_${u8}" 2>/dev/null || true
    sleep 0.2
    userdel "pl_${u8}"
  fi
done
rm -rf "/var/www/sites/${site}"
/usr/local/lib/pressluft/redis-acl-apply >/dev/null
echo "removed site $site ($# environments)"
