#!/usr/bin/env bash
# Removes what a site's environments created on this node (test and benchmark clean-up; there is
# no site deletion in the product yet): databases and users, PHP-FPM pools, server blocks, Linux
# users, Redis ACL users and keys, and the site directory.
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
  if id "pl_${u8}" >/dev/null 2>&1; then userdel "pl_${u8}"; fi
done
rm -rf "/var/www/sites/${site}"
/usr/local/lib/pressluft/redis-acl-apply >/dev/null
for fpm in /etc/init.d/php*-fpm; do [ -x "$fpm" ] && service "$(basename "$fpm")" reload >/dev/null; done
service nginx reload >/dev/null
echo "removed site $site ($# environments)"
