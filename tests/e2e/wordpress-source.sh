#!/usr/bin/env bash
# Makes sure Debian's `wordpress` package (and a theme: the package ships none) is on this (already provisioned) node, so sites can be
# created with wordpress_source = dir:/usr/share/wordpress (no internet here). Installed after
# provisioning on purpose: with nginx and PHP-FPM present, the package's web-server dependency is
# satisfied by nginx instead of pulling in Apache.
set -euo pipefail
if [ -f /usr/share/wordpress/wp-includes/version.php ] && [ -d /usr/share/wordpress/wp-content/themes/twentytwentythree ]; then
  echo "wordpress-source: /usr/share/wordpress present"
  exit 0
fi
command -v nginx >/dev/null || { echo "wordpress-source: provision the node first (nginx missing)" >&2; exit 1; }
export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout=300 update -qq
apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends wordpress wordpress-theme-twentytwentythree >/dev/null
test -f /usr/share/wordpress/wp-includes/version.php
echo "wordpress-source: installed Debian's wordpress package"
