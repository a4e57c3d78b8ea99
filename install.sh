#!/usr/bin/env bash
# Pressluft installer (architecture.md §8): turns a fresh Debian 12 / Ubuntu 24.04 server into a
# Pressluft control plane that is also its own first node (single-server mode).
#
#   ./install.sh [--binary PATH] [--env KEY=VALUE]... [--admin-email E [--admin-password-stdin]]
#                [--public-ip IPV4] [--acme-directory-url URL] [--acme-ca-bundle FILE] [--acme-email E]
#
# Steps: 1 checks, 2 packages (OpenSSH, git, Python, ansible-core >= 2.16), 3 user `pressluft` and
# its directories, 4 binary /usr/local/bin/pressluft and /etc/pressluft/pressluft.env, 5 `pressluft
# migrate` and root's authorized key for 127.0.0.1, 6 first admin, 7 HTTPS for the dashboard (nginx
# and an HTTP-01 certificate for <public IP with dashes>.sslip.io, or the control-plane domain, by
# the same Ansible roles node_provision runs), 8 service, 9 health check.
#
# The dashboard is served over HTTPS from the first minute (issue 15): `pressluft serve` listens on
# 127.0.0.1:8080 and the proxy socket only, nginx terminates TLS in front of it. Only when no
# certificate can be issued does the installer fall back to plain HTTP on 0.0.0.0:8080 (marked in
# the env file; every dashboard page then shows a warning); a later run that gets the certificate
# moves it back behind nginx.
#
# Idempotent: every step compares before it changes anything, a re-run only repairs what differs,
# and the last line says how many changes were made ("install: 0 changes" when nothing was to do).
# Ships alone (copy it next to the `pressluft` binary); it needs nothing from the source tree.
set -euo pipefail
set -E
umask 022

readonly BIN_DEST=/usr/local/bin/pressluft
readonly ETC_DIR=/etc/pressluft
readonly ENV_FILE=$ETC_DIR/pressluft.env
readonly SVC_USER=pressluft
readonly HOME_DIR=/var/lib/pressluft
readonly VENV=/opt/pressluft/ansible
readonly ANSIBLE_MIN=2.16
readonly ANSIBLE_BELOW=2.20
readonly ANSIBLE_PIP_SPEC="ansible-core>=${ANSIBLE_MIN},<${ANSIBLE_BELOW}"
readonly UNIT_FILE=/etc/systemd/system/pressluft.service
readonly PID_FILE=/run/pressluft.pid
readonly CHROMIUM_DEFAULT=/usr/lib/chromium/chromium # `pressluft serve`'s default chromium_path
readonly SAFE_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
readonly APT_PACKAGES=(openssh-server openssh-client git python3 python3-venv sudo curl ca-certificates iproute2)
readonly DEFAULT_LISTEN=127.0.0.1:8080   # `serve`'s own default: loopback, behind nginx
readonly FALLBACK_LISTEN=0.0.0.0:8080    # plain HTTP while no certificate could be issued
readonly FALLBACK_MARK='# install.sh: plain-HTTP fallback, no certificate could be issued; removed once one is'
readonly SOCKET_DIR=/run/pressluft # the proxy socket's directory: SVC_USER:www-data 2750
readonly WEB_GROUP=www-data         # nginx's group: the only group that reaches the proxy socket

ORIGINAL_ARGS=("$@")
STEP=start
CHANGES=0
CHANGE_LIST=()
FAILED_CMD=
FAILED_LINE=
RESTART_REASON=

# --- output and failure handling -----------------------------------------------------------------
say() { printf '    %s\n' "$*"; }
warn() { printf '    WARNING: %s\n' "$*" >&2; }
step() {
  STEP="$1 $2"
  printf '\n==> [%s] %s\n' "$1" "$2"
}
changed() {
  CHANGES=$((CHANGES + 1))
  CHANGE_LIST+=("$*")
  printf '    changed: %s\n' "$*"
}
die() {
  printf 'install: %s\n' "$*" >&2
  exit 1
}
rerun_command() {
  local out
  out=$(printf '%q ' "$0" "${ORIGINAL_ARGS[@]}")
  printf '%s' "${out% }"
}
on_err() {
  FAILED_CMD=$1
  FAILED_LINE=$2
}
on_exit() {
  local status=$?
  [ "$status" = 0 ] && return 0
  {
    printf '\ninstall: FAILED in step "%s" (exit status %s)\n' "$STEP" "$status"
    [ -n "$FAILED_CMD" ] && printf 'install: failing command (line %s): %s\n' "$FAILED_LINE" "$FAILED_CMD"
    printf 'install: %s change(s) were made before the failure; the installer is idempotent.\n' "$CHANGES"
    printf 'install: fix the cause above, then re-run:\n  %s\n' "$(rerun_command)"
    [ -n "${ADMIN_PASSWORD_STDIN_FLAG:-}" ] && printf '  (with the admin password on standard input again)\n'
  } >&2
  return 0
}
trap 'on_err "$BASH_COMMAND" "$LINENO"' ERR
trap on_exit EXIT

usage() {
  cat <<'EOF'
Usage: install.sh [OPTIONS]

Installs or repairs the Pressluft control plane on this Debian 12 / Ubuntu 24.04 server (run as root).
Idempotent: re-run it at any time; it changes only what differs and reports the number of changes.

Options:
  --binary PATH           pressluft binary to install (default: ./pressluft next to install.sh)
  --env KEY=VALUE         set a variable in /etc/pressluft/pressluft.env (repeatable), e.g.
                          --env PRESSLUFT_MANAGE_FIREWALL=false --env PRESSLUFT_LISTEN_ADDR=127.0.0.1:8080;
                          an empty VALUE removes KEY; variables set by earlier runs are kept
  --admin-email EMAIL     e-mail of the first admin (asked interactively when missing)
  --admin-password-stdin  read the first admin's password from the first line of standard input
                          (non-interactive installs, CI); requires --admin-email
  --public-ip IPV4        this server's public IPv4 (default: detected); the dashboard is served at
                          https://<IPV4 with dashes>.sslip.io until a control-plane domain is set
  --acme-directory-url URL  ACME server for the dashboard's certificate and node provisioning
                          (setting acme_directory_url; default Let's Encrypt); an empty URL resets it
  --acme-ca-bundle FILE   CA bundle certbot trusts for a private ACME server (setting acme_ca_bundle)
  --acme-email EMAIL      ACME account e-mail (setting acme_email; default: none)
  -h, --help              this text
EOF
}

# --- arguments -------------------------------------------------------------------------------------
BINARY_SRC=
ADMIN_EMAIL=
ADMIN_PASSWORD_STDIN_FLAG=
ENV_ARGS=()
ACME_ARGS=()
PUBLIC_IP_ARG=
while [ $# -gt 0 ]; do
  case "$1" in
    --binary) [ $# -ge 2 ] || die "--binary needs a path"; BINARY_SRC=$2; shift 2 ;;
    --binary=*) BINARY_SRC=${1#*=}; shift ;;
    --env) [ $# -ge 2 ] || die "--env needs KEY=VALUE"; ENV_ARGS+=("$2"); shift 2 ;;
    --env=*) ENV_ARGS+=("${1#*=}"); shift ;;
    --admin-email) [ $# -ge 2 ] || die "--admin-email needs an e-mail address"; ADMIN_EMAIL=$2; shift 2 ;;
    --admin-email=*) ADMIN_EMAIL=${1#*=}; shift ;;
    --admin-password-stdin) ADMIN_PASSWORD_STDIN_FLAG=1; shift ;;
    --public-ip) [ $# -ge 2 ] || die "--public-ip needs an IPv4 address"; PUBLIC_IP_ARG=$2; shift 2 ;;
    --public-ip=*) PUBLIC_IP_ARG=${1#*=}; shift ;;
    --acme-directory-url | --acme-ca-bundle | --acme-email)
      [ $# -ge 2 ] || die "$1 needs a value"; ACME_ARGS+=("$1=$2"); shift 2 ;;
    --acme-directory-url=* | --acme-ca-bundle=* | --acme-email=*) ACME_ARGS+=("$1"); shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done
if [ -n "$PUBLIC_IP_ARG" ]; then
  [[ $PUBLIC_IP_ARG =~ ^[0-9]{1,3}(\.[0-9]{1,3}){3}$ ]] || die "--public-ip $PUBLIC_IP_ARG: expected an IPv4 address"
  ENV_ARGS+=("PRESSLUFT_PUBLIC_IP=$PUBLIC_IP_ARG")
fi
if [ -n "$ADMIN_PASSWORD_STDIN_FLAG" ] && [ -z "$ADMIN_EMAIL" ]; then
  die "--admin-password-stdin needs --admin-email"
fi

# The password is read at once, before any other command could consume standard input.
ADMIN_PASSWORD=
if [ -n "$ADMIN_PASSWORD_STDIN_FLAG" ]; then
  IFS= read -r ADMIN_PASSWORD || true
  ADMIN_PASSWORD=${ADMIN_PASSWORD%$'\r'}
  [ -n "$ADMIN_PASSWORD" ] || die "--admin-password-stdin: no password on standard input"
  exec </dev/null
fi

# --- helpers ---------------------------------------------------------------------------------------
version_ge() { # A B: A >= B (dotted versions)
  [ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | sed -n 1p)" = "$2" ]
}
ansible_ok() { # VERSION: within [ANSIBLE_MIN, ANSIBLE_BELOW)
  [ -n "$1" ] && version_ge "$1" "$ANSIBLE_MIN" && ! version_ge "$1" "$ANSIBLE_BELOW"
}
ansible_version_of() { # PATH to ansible-playbook: prints its core version, or nothing
  local out
  [ -x "$1" ] || return 0
  out=$("$1" --version 2>/dev/null) || return 0 # no `| head`: Ansible dies of SIGPIPE noisily
  out=${out%%$'\n'*}
  if [[ $out =~ core\ ([0-9]+\.[0-9]+(\.[0-9]+)?) ]]; then
    printf '%s\n' "${BASH_REMATCH[1]}"
  fi
}
pkg_installed() {
  [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true)" = installed ]
}
apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  if [ -z "${APT_UPDATED:-}" ]; then
    apt-get -o DPkg::Lock::Timeout=300 update -qq
    APT_UPDATED=1
  fi
  apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "$@" >/dev/null
}
ensure_dir() { # PATH OWNER GROUP MODE
  local path=$1 owner=$2 group=$3 mode=$4
  if [ ! -d "$path" ]; then
    install -d -o "$owner" -g "$group" -m "$mode" "$path"
    changed "created $path ($owner:$group $mode)"
  elif [ "$(stat -c '%U:%G %a' "$path")" != "$owner:$group ${mode#0}" ]; then
    chown "$owner:$group" "$path"
    chmod "$mode" "$path"
    changed "set $path to $owner:$group $mode"
  fi
}
ensure_file() { # CONTENT_FILE DEST OWNER GROUP MODE: prints nothing; returns 0 when DEST changed
  local src=$1 dest=$2 owner=$3 group=$4 mode=$5 tmp
  if [ -f "$dest" ] && cmp -s "$src" "$dest" &&
    [ "$(stat -c '%U:%G %a' "$dest")" = "$owner:$group ${mode#0}" ]; then
    return 1
  fi
  tmp=$(mktemp "$dest.XXXXXX")
  cat "$src" >"$tmp"
  chown "$owner:$group" "$tmp"
  chmod "$mode" "$tmp"
  mv -f "$tmp" "$dest"
  return 0
}
systemd_present() { [ -d /run/systemd/system ]; }

# --- configuration: /etc/pressluft/pressluft.env (kept, merged with --env) --------------------------
declare -A ENV_VALUES=()
LISTEN_FALLBACK=   # the env file's PRESSLUFT_LISTEN_ADDR is the installer's plain-HTTP fallback
valid_key() { [[ $1 =~ ^(PRESSLUFT_[A-Z0-9_]+|RUST_LOG)$ ]]; }
VALUE_RE='^[]A-Za-z0-9_.,:=/@+%[-]*$' # also [ ] for IPv6 listen addresses
valid_value() { [[ $1 =~ $VALUE_RE ]]; }
if [ -r "$ENV_FILE" ]; then
  while IFS= read -r line || [ -n "$line" ]; do
    line=${line%$'\r'}
    [ "$line" = "$FALLBACK_MARK" ] && LISTEN_FALLBACK=1
    [[ $line =~ ^[[:space:]]*(#|$) ]] && continue
    [[ $line =~ ^([A-Za-z_][A-Za-z0-9_]*)=(.*)$ ]] || die "$ENV_FILE: unreadable line: $line"
    key=${BASH_REMATCH[1]}
    value=${BASH_REMATCH[2]}
    if [[ $value =~ ^\"(.*)\"$ ]] || [[ $value =~ ^\'(.*)\'$ ]]; then value=${BASH_REMATCH[1]}; fi
    valid_key "$key" || die "$ENV_FILE: unknown variable $key (only PRESSLUFT_* and RUST_LOG)"
    valid_value "$value" || die "$ENV_FILE: $key has characters the installer does not write: $value"
    ENV_VALUES[$key]=$value
  done <"$ENV_FILE"
fi
for kv in "${ENV_ARGS[@]}"; do
  [[ $kv == *=* ]] || die "--env $kv: expected KEY=VALUE"
  key=${kv%%=*}
  value=${kv#*=}
  valid_key "$key" || die "--env $key: only PRESSLUFT_* variables and RUST_LOG are accepted"
  valid_value "$value" || die "--env $key: value may hold only letters, digits and _ . , : = / @ + % [ ] -"
  if [ -z "$value" ]; then unset "ENV_VALUES[$key]"; else ENV_VALUES[$key]=$value; fi
  [ "$key" = PRESSLUFT_LISTEN_ADDR ] && LISTEN_FALLBACK= # the operator's own choice from now on
done
# The fallback is the installer's: decided again in step 7 (a value no longer the fallback's is
# the operator's).
if [ -n "$LISTEN_FALLBACK" ]; then
  if [ "${ENV_VALUES[PRESSLUFT_LISTEN_ADDR]:-}" = "$FALLBACK_LISTEN" ]; then
    unset "ENV_VALUES[PRESSLUFT_LISTEN_ADDR]"
  else
    LISTEN_FALLBACK=
  fi
fi
LISTEN_OPERATOR=${ENV_VALUES[PRESSLUFT_LISTEN_ADDR]:-}
DATA_DIR=${ENV_VALUES[PRESSLUFT_DATA_DIR]:-$HOME_DIR}
LOG_DIR=${ENV_VALUES[PRESSLUFT_LOG_DIR]:-/var/log/pressluft}
listen_of() { # sets LISTEN_ADDR, LISTEN_HOST, LISTEN_PORT from ENV_VALUES (or the fallback)
  if [ -n "$LISTEN_FALLBACK" ]; then
    LISTEN_ADDR=$FALLBACK_LISTEN
  else
    LISTEN_ADDR=${ENV_VALUES[PRESSLUFT_LISTEN_ADDR]:-$DEFAULT_LISTEN}
  fi
  [[ $LISTEN_ADDR =~ ^(.+):([0-9]+)$ ]] || die "PRESSLUFT_LISTEN_ADDR=$LISTEN_ADDR: expected HOST:PORT"
  LISTEN_HOST=${BASH_REMATCH[1]}
  LISTEN_PORT=${BASH_REMATCH[2]}
}
listen_of
SERVE_OUT=$LOG_DIR/serve.out
PROXY_SOCKET=${ENV_VALUES[PRESSLUFT_PROXY_SOCKET]:-$SOCKET_DIR/proxy.sock}
[[ $PROXY_SOCKET =~ ^/run/pressluft/[A-Za-z0-9._-]+$ ]] ||
  die "PRESSLUFT_PROXY_SOCKET=$PROXY_SOCKET: the installer prepares only $SOCKET_DIR; use a file name inside it"

# Runs the installed binary as the service user with exactly the service's environment.
env_file_args() {
  local line
  ENV_FILE_ARGS=()
  while IFS= read -r line; do
    [[ $line =~ ^[A-Za-z_][A-Za-z0-9_]*= ]] && ENV_FILE_ARGS+=("$line")
  done <"$ENV_FILE"
  return 0
}
as_pressluft() {
  env_file_args
  (cd / && umask 027 && setpriv --reuid="$SVC_USER" --regid="$SVC_USER" --init-groups \
    env -i HOME="$HOME_DIR" USER="$SVC_USER" LOGNAME="$SVC_USER" PATH="$SAFE_PATH" LANG=C.UTF-8 \
    "${ENV_FILE_ARGS[@]}" "$@")
}

# The command that starts `pressluft serve` without systemd; printed for after a reboot.
START_CMD="install -d -o $SVC_USER -g $WEB_GROUP -m 2750 $SOCKET_DIR; setsid setpriv --reuid=$SVC_USER --regid=$SVC_USER --init-groups env -i HOME=$HOME_DIR USER=$SVC_USER LOGNAME=$SVC_USER PATH=$SAFE_PATH LANG=C.UTF-8 sh -c 'umask 027; set -a; . $ENV_FILE; exec $BIN_DEST serve' </dev/null >>$SERVE_OUT 2>&1 & echo \$! >$PID_FILE"

# ==================================================================================================
step 1/9 "checking the system"
[ "$(id -u)" = 0 ] || die "must run as root (try: sudo $(rerun_command))"
[ -r /etc/os-release ] || die "/etc/os-release is missing: unsupported system (need Debian 12 or Ubuntu 24.04)"
# shellcheck source=/dev/null
OS_INFO=$(. /etc/os-release && printf '%s:%s\n%s' "${ID:-}" "${VERSION_ID:-}" "${PRETTY_NAME:-unknown}")
OS_ID_VERSION=${OS_INFO%%$'\n'*}
OS_NAME=${OS_INFO#*$'\n'}
case "$OS_ID_VERSION" in
  debian:12 | ubuntu:24.04) say "$OS_NAME" ;;
  *) die "unsupported system $OS_NAME: Pressluft installs on Debian 12 or Ubuntu 24.04 only" ;;
esac
[ "$(uname -m)" = x86_64 ] || [ "$(uname -m)" = aarch64 ] || warn "untested architecture $(uname -m)"

if [ -z "$BINARY_SRC" ]; then
  script_dir=$(cd "$(dirname "${BASH_SOURCE[0]:-$0}")" && pwd)
  BINARY_SRC=$script_dir/pressluft
  if [ ! -e "$BINARY_SRC" ] && [ -x "$BIN_DEST" ]; then
    say "no pressluft binary next to install.sh: keeping the installed $BIN_DEST"
    BINARY_SRC=$BIN_DEST
  fi
fi
[ -f "$BINARY_SRC" ] || die "binary $BINARY_SRC not found (pass --binary PATH)"
BINARY_SRC=$(readlink -f "$BINARY_SRC")
[ -x "$BINARY_SRC" ] || die "binary $BINARY_SRC is not executable"
BINARY_VERSION=$("$BINARY_SRC" --version 2>/dev/null) || die "$BINARY_SRC --version fails: not a pressluft binary for this system?"
"$BINARY_SRC" migrate --help >/dev/null 2>&1 || die "$BINARY_SRC has no \`migrate\` command: not the pressluft control plane"
say "binary $BINARY_SRC ($BINARY_VERSION)"
cd /

# ==================================================================================================
step 2/9 "packages: OpenSSH, git, Python, ansible-core >= $ANSIBLE_MIN, chromium"
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  pkg_installed "$pkg" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  say "installing ${missing[*]}"
  apt_install "${missing[@]}"
  changed "installed packages: ${missing[*]}"
else
  say "system packages already installed"
fi

# ansible-core: an existing virtualenv, else the distribution's package when new enough, else a
# virtualenv at $VENV (Debian 12 ships 2.14).
venv_version=$(ansible_version_of "$VENV/bin/ansible-playbook")
distro_version=
pkg_installed ansible-core && distro_version=$(ansible_version_of /usr/bin/ansible-playbook)
ANSIBLE_SOURCE=
if ansible_ok "$venv_version"; then
  ANSIBLE_SOURCE=venv
  say "ansible-core $venv_version in the virtualenv $VENV"
elif ansible_ok "$distro_version"; then
  ANSIBLE_SOURCE=distro
  say "ansible-core $distro_version from the distribution"
else
  candidate=$(apt-cache policy ansible-core 2>/dev/null | sed -n 's/^ *Candidate: *//p')
  if [ -z "$candidate" ] || [ "$candidate" = "(none)" ]; then
    apt-get -o DPkg::Lock::Timeout=300 update -qq
    APT_UPDATED=1
    candidate=$(apt-cache policy ansible-core 2>/dev/null | sed -n 's/^ *Candidate: *//p')
  fi
  candidate_version=${candidate#*:}    # epoch
  candidate_version=${candidate_version%%[-+~]*} # revision
  if [ "$candidate" != "(none)" ] && ansible_ok "$candidate_version"; then
    say "installing the distribution's ansible-core $candidate"
    apt_install ansible-core
    changed "installed package ansible-core $candidate"
    ANSIBLE_SOURCE=distro
  else
    say "the distribution's ansible-core (${candidate:-none}) is older than $ANSIBLE_MIN: using a virtualenv"
    mkdir -p "$(dirname "$VENV")"
    [ -x "$VENV/bin/python" ] || /usr/bin/python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "$ANSIBLE_PIP_SPEC"
    venv_version=$(ansible_version_of "$VENV/bin/ansible-playbook")
    ansible_ok "$venv_version" || die "ansible-core in $VENV is not within $ANSIBLE_PIP_SPEC after pip install"
    changed "created virtualenv $VENV with ansible-core $venv_version"
    ANSIBLE_SOURCE=venv
  fi
fi
if [ "$ANSIBLE_SOURCE" = venv ]; then
  for cmd_path in "$VENV"/bin/ansible*; do
    cmd=${cmd_path##*/}
    if [ "$(readlink "/usr/local/bin/$cmd" 2>/dev/null || true)" != "$cmd_path" ]; then
      ln -sfn "$cmd_path" "/usr/local/bin/$cmd"
      changed "linked /usr/local/bin/$cmd -> $cmd_path"
    fi
  done
fi
# chromium, for the screenshots of safe updates (issue 16): the distribution's build, never a
# downloaded one. Debian: the package `chromium` (/usr/lib/chromium/chromium). Ubuntu 24.04 has no
# chromium deb: its `chromium-browser` (and any `chromium` whose version names a snap) only installs
# the snap, which is not installed here (snapd, and a confined browser that cannot run under the
# service's hardening); a `chromium` deb from a repository the operator added is installed as on
# Debian. Without one the installer goes on and says how to give safe updates a chromium.
CHROMIUM_PATH=${ENV_VALUES[PRESSLUFT_CHROMIUM_PATH]:-$CHROMIUM_DEFAULT}
if [ -x "$CHROMIUM_PATH" ]; then
  say "chromium $CHROMIUM_PATH (safe updates' screenshots)"
elif [ "$CHROMIUM_PATH" != "$CHROMIUM_DEFAULT" ]; then
  warn "PRESSLUFT_CHROMIUM_PATH=$CHROMIUM_PATH is not an executable: safe updates cannot take screenshots"
else
  candidate=$(apt-cache policy chromium 2>/dev/null | sed -n 's/^ *Candidate: *//p')
  if [ -z "$candidate" ] || [ "$candidate" = "(none)" ]; then
    [ -n "${APT_UPDATED:-}" ] || { apt-get -o DPkg::Lock::Timeout=300 update -qq; APT_UPDATED=1; }
    candidate=$(apt-cache policy chromium 2>/dev/null | sed -n 's/^ *Candidate: *//p')
  fi
  if [ -n "$candidate" ] && [ "$candidate" != "(none)" ] && [[ $candidate != *snap* ]]; then
    say "installing the distribution's chromium $candidate (safe updates' screenshots)"
    # fonts-liberation (a recommendation, which apt_install skips): metric-compatible Arial,
    # Times and Courier, the fallbacks of most sites' font stacks.
    apt_install chromium fonts-liberation
    [ -x "$CHROMIUM_DEFAULT" ] || die "package chromium installed but $CHROMIUM_DEFAULT is missing"
    changed "installed packages chromium $candidate, fonts-liberation"
  else
    warn "no chromium deb for $OS_NAME (only the snap): safe updates need a chromium; install a deb build and set it with --env PRESSLUFT_CHROMIUM_PATH=/path/to/chrome, then re-run"
  fi
fi

effective=$(PATH=$SAFE_PATH command -v ansible-playbook || true)
[ -n "$effective" ] || die "ansible-playbook is not on the service's PATH ($SAFE_PATH)"
effective_version=$(ansible_version_of "$effective")
ansible_ok "$effective_version" ||
  die "$effective (first on the service's PATH) is ansible-core ${effective_version:-unknown}, need >= $ANSIBLE_MIN, < $ANSIBLE_BELOW"
say "ansible-playbook for the service: $effective (core $effective_version)"

# sshd: Ansible reaches this host as root@127.0.0.1:22 with the control plane's key.
ssh_listening() { timeout 3 bash -c '</dev/tcp/127.0.0.1/22' 2>/dev/null; }
mkdir -p /run/sshd
chmod 0755 /run/sshd
/usr/sbin/sshd -t || die "the sshd configuration is invalid (see /usr/sbin/sshd -t)"
if ssh_listening; then
  say "sshd is listening on 127.0.0.1:22"
else
  if systemd_present; then
    systemctl enable --now ssh >/dev/null 2>&1 || systemctl start ssh.socket
  else
    service ssh start >/dev/null
  fi
  for _ in 1 2 3 4 5 6 7 8 9 10; do ssh_listening && break; sleep 0.5; done
  ssh_listening || die "sshd does not accept connections on 127.0.0.1:22 after starting it"
  changed "started sshd"
fi
sshd_effective=$(/usr/sbin/sshd -T -C user=root,host=localhost,addr=127.0.0.1 2>/dev/null || true)
if grep -qix 'permitrootlogin no' <<<"$sshd_effective"; then
  die "sshd forbids root logins (PermitRootLogin no); Pressluft provisions this host as root@127.0.0.1 with a key. Set 'PermitRootLogin prohibit-password' and re-run"
fi
if grep -qix 'pubkeyauthentication no' <<<"$sshd_effective"; then
  die "sshd has PubkeyAuthentication no; Pressluft logs in with a key. Enable it and re-run"
fi

# ==================================================================================================
step 3/9 "system user $SVC_USER and directories"
if ! getent passwd "$SVC_USER" >/dev/null; then
  if getent group "$SVC_USER" >/dev/null; then
    useradd --system --gid "$SVC_USER" --home-dir "$HOME_DIR" --no-create-home --shell /usr/sbin/nologin "$SVC_USER"
  else
    useradd --system --user-group --home-dir "$HOME_DIR" --no-create-home --shell /usr/sbin/nologin "$SVC_USER"
  fi
  changed "created system user $SVC_USER (home $HOME_DIR)"
elif [ "$(getent passwd "$SVC_USER" | cut -d: -f6)" != "$HOME_DIR" ]; then
  usermod --home "$HOME_DIR" "$SVC_USER"
  changed "set the home of $SVC_USER to $HOME_DIR"
else
  say "user $SVC_USER exists"
fi
SVC_GROUP=$(id -gn "$SVC_USER")
ensure_dir "$HOME_DIR" "$SVC_USER" "$SVC_GROUP" 0700
[ "$DATA_DIR" = "$HOME_DIR" ] || ensure_dir "$DATA_DIR" "$SVC_USER" "$SVC_GROUP" 0700
ensure_dir "$LOG_DIR" "$SVC_USER" "$SVC_GROUP" 0750
say "$HOME_DIR (0700) and $LOG_DIR (0750) owned by $SVC_USER"
# The proxy socket's directory: setgid, so the socket gets the group www-data; only the service
# user and nginx can reach it (environment users pl_* are never in www-data).
getent group "$WEB_GROUP" >/dev/null || die "group $WEB_GROUP (nginx's) is missing: not a Debian/Ubuntu base system?"
ensure_dir "$SOCKET_DIR" "$SVC_USER" "$WEB_GROUP" 2750
say "$SOCKET_DIR ($SVC_USER:$WEB_GROUP 2750) for the proxy socket"

# ==================================================================================================
step 4/9 "binary $BIN_DEST and $ENV_FILE"
BINARY_CHANGED=
if [ "$BINARY_SRC" = "$BIN_DEST" ]; then
  :
elif [ -f "$BIN_DEST" ] && cmp -s "$BINARY_SRC" "$BIN_DEST"; then
  :
else
  tmp=$(mktemp "$BIN_DEST.XXXXXX")
  cp "$BINARY_SRC" "$tmp"
  chown root:root "$tmp"
  chmod 0755 "$tmp"
  mv -f "$tmp" "$BIN_DEST" # a rename: a running copy keeps its old file
  changed "installed $BIN_DEST ($BINARY_VERSION)"
  BINARY_CHANGED=1
fi
if [ "$(stat -c '%U:%G %a' "$BIN_DEST")" != "root:root 755" ]; then
  chown root:root "$BIN_DEST"
  chmod 0755 "$BIN_DEST"
  changed "set $BIN_DEST to root:root 0755"
fi
say "$BIN_DEST: $("$BIN_DEST" --version)"

detect_public_ip() {
  local out ip
  out=$(ip -4 route get 1.1.1.1 2>/dev/null || true)
  if [[ $out =~ src\ ([0-9]+\.[0-9]+\.[0-9]+\.[0-9]+) ]]; then
    printf '%s\n' "${BASH_REMATCH[1]}"
    return 0
  fi
  for ip in $(hostname -I 2>/dev/null || true); do
    if [[ $ip =~ ^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$ ]] && [[ $ip != 127.* ]]; then
      printf '%s\n' "$ip"
      return 0
    fi
  done
  return 0
}
if [ -n "${ENV_VALUES[PRESSLUFT_PUBLIC_IP]:-}" ]; then
  say "public IPv4 ${ENV_VALUES[PRESSLUFT_PUBLIC_IP]} (configured; change it with --env PRESSLUFT_PUBLIC_IP=...)"
else
  detected=$(detect_public_ip)
  if [ -n "$detected" ]; then
    ENV_VALUES[PRESSLUFT_PUBLIC_IP]=$detected
    say "public IPv4 $detected (detected)"
  else
    warn "no global IPv4 address found; set one with --env PRESSLUFT_PUBLIC_IP=..."
  fi
fi
# The control-plane vhost (node_provision, once a control-plane domain is set) proxies to this
# socket and sets X-Forwarded-For to the client's address; the control plane believes the header
# only there. 127.0.0.1 is not trusted: any local process (a site's PHP) could connect over TCP.
if [ "${ENV_VALUES[PRESSLUFT_PROXY_SOCKET]:-}" != "$PROXY_SOCKET" ]; then
  ENV_VALUES[PRESSLUFT_PROXY_SOCKET]=$PROXY_SOCKET
fi
say "proxy socket $PROXY_SOCKET (the control-plane vhost on this host connects there)"
ensure_dir "$ETC_DIR" root "$SVC_GROUP" 0750
ENV_CHANGED=
write_env_file() { # writes ENV_VALUES (+ the fallback listen address) when they differ
  local env_tmp key
  env_tmp=$(mktemp)
  {
    printf '# Environment of the Pressluft control plane (pressluft serve; install.sh runs migrate and admin with it).\n'
    printf '# Written by install.sh, which keeps these values on re-runs: change one with\n'
    printf '# %s (an empty VALUE removes KEY) or edit this file, then restart the service.\n' 'install.sh --env KEY=VALUE'
    printf '# Without PRESSLUFT_LISTEN_ADDR, serve listens on %s (nginx serves the dashboard over HTTPS).\n' "$DEFAULT_LISTEN"
    while IFS= read -r key; do
      [ -n "$key" ] && printf '%s=%s\n' "$key" "${ENV_VALUES[$key]}"
    done < <(printf '%s\n' "${!ENV_VALUES[@]}" | LC_ALL=C sort)
    if [ -n "$LISTEN_FALLBACK" ]; then
      printf '%s\n' "$FALLBACK_MARK"
      printf 'PRESSLUFT_LISTEN_ADDR=%s\n' "$FALLBACK_LISTEN"
    fi
  } >"$env_tmp"
  if ensure_file "$env_tmp" "$ENV_FILE" root "$SVC_GROUP" 0640; then
    changed "wrote $ENV_FILE"
    ENV_CHANGED=1
  else
    say "$ENV_FILE unchanged"
  fi
  rm -f "$env_tmp"
}
write_env_file
grep -v '^#' "$ENV_FILE" | sed 's/^/      /'

# ==================================================================================================
step 5/9 "database migrations, SSH key pair, root's authorized key"
migrate_out=$(as_pressluft "$BIN_DEST" migrate 2>&1) || {
  printf '%s\n' "$migrate_out" >&2
  die "pressluft migrate failed"
}
if grep -Eq 'applied_now=[1-9]|created' <<<"$migrate_out"; then
  changed "pressluft migrate: applied migrations or created the age identity / SSH key pair"
else
  say "database up to date; key pair present"
fi
PUBKEY=$(awk 'f && NF { print; exit } /control-plane SSH public key:/ { f = 1 }' <<<"$migrate_out")
[[ $PUBKEY =~ ^(ssh-[a-z0-9-]+|ecdsa-[a-z0-9-]+)\ ([A-Za-z0-9+/=]+)(\ .*)?$ ]] ||
  die "pressluft migrate printed no SSH public key (output: $migrate_out)"
KEY_BLOB=${BASH_REMATCH[2]}
AUTH_LINE="from=\"127.0.0.1,::1\" $PUBKEY"
say "control-plane key: $PUBKEY"

ensure_dir /root/.ssh root root 0700
AUTH_KEYS=/root/.ssh/authorized_keys
[ -e "$AUTH_KEYS" ] || { install -m 0600 /dev/null "$AUTH_KEYS"; changed "created $AUTH_KEYS"; }
exact=$(grep -cxF -- "$AUTH_LINE" "$AUTH_KEYS" || true)
with_blob=$(grep -cF -- "$KEY_BLOB" "$AUTH_KEYS" || true)
if [ "$exact" = 1 ] && [ "$with_blob" = 1 ]; then
  say "key authorized for root from 127.0.0.1/::1 (once)"
else
  ak_tmp=$(mktemp /root/.ssh/authorized_keys.XXXXXX)
  grep -vF -- "$KEY_BLOB" "$AUTH_KEYS" >"$ak_tmp" || true
  printf '%s\n' "$AUTH_LINE" >>"$ak_tmp"
  chmod 0600 "$ak_tmp"
  mv -f "$ak_tmp" "$AUTH_KEYS"
  changed "authorized the control-plane key for root in $AUTH_KEYS (from=\"127.0.0.1,::1\")"
fi
if [ "$(stat -c '%U %a' "$AUTH_KEYS")" != "root 600" ]; then
  chown root:root "$AUTH_KEYS"
  chmod 0600 "$AUTH_KEYS"
  changed "set $AUTH_KEYS to root 0600"
fi

# ==================================================================================================
step 6/9 "first admin"
list_out=$(as_pressluft env RUST_LOG=warn "$BIN_DEST" admin list 2>/dev/null) || die "pressluft admin list failed"
# Only e-mail-shaped lines: any log line on stdout is not an admin.
admins=$(grep -E '^[^[:space:]@]+@[^[:space:]@]+$' <<<"$list_out" || true)
if [ -n "$admins" ]; then
  say "admin(s) exist: $(paste -sd ' ' <<<"$admins")"
  if [ -n "$ADMIN_EMAIL" ] && ! grep -qxiF -- "$ADMIN_EMAIL" <<<"$admins"; then
    say "(--admin-email $ADMIN_EMAIL ignored: an admin exists; add more in the dashboard or with pressluft admin create)"
  fi
else
  if [ -z "$ADMIN_PASSWORD_STDIN_FLAG" ]; then
    { : </dev/tty; } 2>/dev/null ||
      die "no admin exists and there is no terminal to ask for one: pass --admin-email E --admin-password-stdin (password on stdin)"
    if [ -z "$ADMIN_EMAIL" ]; then
      printf '    E-mail of the first admin: ' >/dev/tty
      IFS= read -r ADMIN_EMAIL </dev/tty
    fi
    while :; do
      printf '    Password for %s (at least 12 characters): ' "$ADMIN_EMAIL" >/dev/tty
      IFS= read -r -s ADMIN_PASSWORD </dev/tty
      printf '\n    Repeat the password: ' >/dev/tty
      IFS= read -r -s again </dev/tty
      printf '\n' >/dev/tty
      if [ "$ADMIN_PASSWORD" != "$again" ]; then
        printf '    The passwords differ; again.\n' >/dev/tty
      elif [ "${#ADMIN_PASSWORD}" -lt 12 ]; then
        printf '    Too short (%s characters); at least 12.\n' "${#ADMIN_PASSWORD}" >/dev/tty
      else
        break
      fi
    done
    again=
  fi
  [ -n "$ADMIN_EMAIL" ] || die "no admin e-mail given"
  printf '%s\n' "$ADMIN_PASSWORD" | as_pressluft "$BIN_DEST" admin create --email "$ADMIN_EMAIL" --password-stdin >/dev/null ||
    die "pressluft admin create --email $ADMIN_EMAIL failed (message above)"
  changed "created admin $ADMIN_EMAIL"
fi
ADMIN_PASSWORD=

# ==================================================================================================
step 7/9 "HTTPS for the dashboard: nginx and its certificate"
# The same roles node_provision runs for the local node (playbooks/control-plane-https.yml), with
# the values `pressluft control-plane-vhost-vars` computes like node_provision does; it also stores
# the --acme-* options as settings, so node_provision and the domain jobs reuse them.
HTTPS_LOG=$LOG_DIR/install-https.log
HTTPS_WORK=$(mktemp -d /tmp/pressluft-install-https.XXXXXX)
vars_out=$(as_pressluft env RUST_LOG=warn "$BIN_DEST" control-plane-vhost-vars "${ACME_ARGS[@]}" \
  --result-path "$HTTPS_WORK/result.json" 2>"$HTTPS_WORK/vars.err") || {
  cat "$HTTPS_WORK/vars.err" >&2
  die "pressluft control-plane-vhost-vars failed (message above)"
}
ANSIBLE_DIR=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["ansible_dir"])' "$vars_out")
python3 -c 'import json,sys; json.dump(json.loads(sys.argv[1])["vars"], open(sys.argv[2], "w"))' \
  "$vars_out" "$HTTPS_WORK/vars.json"
chmod 0600 "$HTTPS_WORK/vars.json"
if python3 -c 'import json,sys; sys.exit(0 if json.loads(sys.argv[1])["acme_settings_changed"] else 1)' "$vars_out"; then
  changed "stored the ACME settings (${ACME_ARGS[*]})"
fi
[ -f "$ANSIBLE_DIR/playbooks/control-plane-https.yml" ] || die "$ANSIBLE_DIR/playbooks/control-plane-https.yml is missing"
say "running $ANSIBLE_DIR/playbooks/control-plane-https.yml against this host (log $HTTPS_LOG)"
# A clean environment: nothing of the caller's (proxies, CA bundles) reaches Ansible or certbot.
https_status=0
(cd "$ANSIBLE_DIR" && env -i HOME=/root PATH="$SAFE_PATH" LANG=C.UTF-8 ANSIBLE_CONFIG="$ANSIBLE_DIR/ansible.cfg" \
  ANSIBLE_LOCALHOST_WARNING=false ANSIBLE_NOCOLOR=1 \
  ansible-playbook -i localhost, -c local playbooks/control-plane-https.yml -e "@$HTTPS_WORK/vars.json") \
  >"$HTTPS_LOG" 2>&1 || https_status=$?
chmod 0640 "$HTTPS_LOG"
if [ "$https_status" != 0 ] || [ ! -s "$HTTPS_WORK/result.json" ]; then
  tail -n 25 "$HTTPS_LOG" >&2
  rm -rf "$HTTPS_WORK"
  die "setting up nginx for the dashboard failed (exit $https_status; full output in $HTTPS_LOG)"
fi
recap_changed=$(sed -n 's/.* changed=\([0-9]*\) .*/\1/p' "$HTTPS_LOG" | tail -n 1)
read -r HTTPS_STATUS HTTPS_NAME HTTPS_MESSAGE < <(python3 -c '
import json, sys
cp = json.load(open(sys.argv[1]))["control_plane"]
print(cp["status"], cp["name"] or "-", " ".join((cp.get("message") or "").split()))' "$HTTPS_WORK/result.json")
rm -rf "$HTTPS_WORK"
if [ "${recap_changed:-0}" != 0 ]; then
  changed "nginx and the dashboard's certificate: $recap_changed Ansible change(s) (details in $HTTPS_LOG)"
fi
if [ "$HTTPS_STATUS" = https ]; then
  say "the dashboard is served at https://$HTTPS_NAME/ (nginx, certificate /etc/letsencrypt/live/$HTTPS_NAME/)"
  LISTEN_FALLBACK=
else
  warn "no certificate for the dashboard: $HTTPS_MESSAGE"
  if [ -n "$LISTEN_OPERATOR" ]; then
    warn "PRESSLUFT_LISTEN_ADDR=$LISTEN_OPERATOR is yours: left as it is"
  else
    warn "falling back to plain HTTP on $FALLBACK_LISTEN (a warning banner on every dashboard page); re-run this installer once the cause is fixed"
    LISTEN_FALLBACK=1
  fi
fi
listen_of
write_env_file

# ==================================================================================================
step 8/9 "service pressluft serve"
if systemd_present; then
  CAPS=
  AMBIENT=
  if [ "$LISTEN_PORT" -lt 1024 ]; then # a privileged port needs this one capability
    CAPS=CAP_NET_BIND_SERVICE
    AMBIENT=$'AmbientCapabilities=CAP_NET_BIND_SERVICE\n'
  fi
  RW_PATHS="$HOME_DIR $LOG_DIR $SOCKET_DIR"
  [ "$DATA_DIR" = "$HOME_DIR" ] || RW_PATHS="$HOME_DIR $DATA_DIR $LOG_DIR $SOCKET_DIR"
  unit_tmp=$(mktemp)
  cat >"$unit_tmp" <<EOF
# Written by install.sh, which rewrites it on every run: put local changes in a drop-in
# (systemctl edit pressluft). The environment is in $ENV_FILE.
[Unit]
Description=Pressluft control plane
Wants=network-online.target
After=network-online.target ssh.service

[Service]
Type=simple
User=$SVC_USER
Group=$SVC_GROUP
EnvironmentFile=$ENV_FILE
WorkingDirectory=$HOME_DIR
# /run is emptied at boot: recreate the proxy socket's directory (privileged, "+").
ExecStartPre=+/usr/bin/install -d -o $SVC_USER -g $WEB_GROUP -m 2750 $SOCKET_DIR
ExecStart=$BIN_DEST serve
Restart=on-failure
RestartSec=5
TimeoutStopSec=30
KillMode=control-group
LimitNOFILE=65536
UMask=0027
# Hardening that still lets it run ansible-playbook and ssh (Python, /tmp, ~/.ansible, network).
NoNewPrivileges=true
CapabilityBoundingSet=$CAPS
${AMBIENT}PrivateTmp=true
PrivateDevices=true
ProtectSystem=strict
ReadWritePaths=$RW_PATHS
ProtectHome=true
ProtectKernelTunables=true
ProtectKernelModules=true
ProtectKernelLogs=true
ProtectControlGroups=true
ProtectClock=true
ProtectHostname=true
RestrictSUIDSGID=true
RestrictRealtime=true
# chromium's sandbox (safe updates' screenshots, issue 16) runs its renderers in new user, PID and
# network namespaces; every other kind stays refused.
RestrictNamespaces=user pid net
LockPersonality=true
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK

[Install]
WantedBy=multi-user.target
EOF
  UNIT_CHANGED=
  if ensure_file "$unit_tmp" "$UNIT_FILE" root root 0644; then
    systemctl daemon-reload
    changed "wrote $UNIT_FILE"
    UNIT_CHANGED=1
  fi
  rm -f "$unit_tmp"
  if ! systemctl is-enabled --quiet pressluft.service 2>/dev/null; then
    systemctl enable --quiet pressluft.service
    changed "enabled pressluft.service"
  fi
  if systemctl is-active --quiet pressluft.service; then
    if [ -n "$BINARY_CHANGED$ENV_CHANGED$UNIT_CHANGED" ]; then
      systemctl restart pressluft.service
      changed "restarted pressluft.service (new binary, environment or unit)"
    else
      say "pressluft.service is running"
    fi
  else
    systemctl start pressluft.service
    changed "started pressluft.service"
  fi
  SERVICE_HINT="systemctl status pressluft; logs: journalctl -u pressluft and $LOG_DIR/pressluft.log"
else
  is_our_serve() { # PID: a `pressluft serve` running from $BIN_DEST (or an older, replaced copy)
    local pid=$1 exe
    [[ $pid =~ ^[0-9]+$ ]] && [ -e "/proc/$pid" ] || return 1
    exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 1
    [[ $exe == "$BIN_DEST" || $exe == "$BIN_DEST (deleted)" ]] || return 1
    [ "$(tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | sed -n 2p)" = serve ]
  }
  running_pids() {
    local p pid
    if [ -r "$PID_FILE" ]; then
      pid=$(tr -dc '0-9' <"$PID_FILE")
      if is_our_serve "$pid"; then
        printf '%s\n' "$pid"
        return 0
      fi
    fi
    for p in /proc/[0-9]*; do
      pid=${p#/proc/}
      is_our_serve "$pid" && printf '%s\n' "$pid"
    done
    return 0
  }
  stop_serve() { # PID
    local pid=$1
    kill -TERM "$pid" 2>/dev/null || return 0
    for _ in $(seq 1 60); do
      [ -e "/proc/$pid" ] || return 0
      sleep 0.5
    done
    kill -KILL "$pid" 2>/dev/null || true
  }
  say "systemd is not running on this machine (no /run/systemd/system): no pressluft.service is installed"
  if [ "$LISTEN_PORT" -lt 1024 ]; then
    warn "port $LISTEN_PORT is privileged: user $SVC_USER cannot listen on it without systemd; use a port >= 1024"
  fi
  mapfile -t pids < <(running_pids)
  if [ "${#pids[@]}" -gt 1 ]; then
    die "several pressluft serve processes run (${pids[*]}); stop all but one (kill PID) and re-run"
  fi
  pid=${pids[0]:-}
  if [ -n "$pid" ]; then
    if ! [ "/proc/$pid/exe" -ef "$BIN_DEST" ]; then
      RESTART_REASON="it runs an older binary"
    elif [ -n "$ENV_CHANGED" ]; then
      RESTART_REASON="$ENV_FILE changed"
    fi
    if [ -n "$RESTART_REASON" ]; then
      say "stopping pressluft serve (pid $pid): $RESTART_REASON"
      stop_serve "$pid"
      changed "stopped pressluft serve pid $pid ($RESTART_REASON)"
      pid=
    else
      if [ "$(tr -dc '0-9' <"$PID_FILE" 2>/dev/null || true)" != "$pid" ]; then
        printf '%s\n' "$pid" >"$PID_FILE"
        changed "recorded the running pressluft serve (pid $pid) in $PID_FILE"
      fi
      say "pressluft serve is already running (pid $pid, same binary): left alone"
    fi
  fi
  if [ -z "$pid" ]; then
    bash -c "$START_CMD"
    pid=$(tr -dc '0-9' <"$PID_FILE")
    for _ in $(seq 1 50); do
      [ "/proc/$pid/exe" -ef "$BIN_DEST" ] && break
      [ -e "/proc/$pid" ] || break
      sleep 0.1
    done
    if ! is_our_serve "$pid"; then
      tail -n 30 "$SERVE_OUT" >&2 || true
      die "pressluft serve did not start (output above, full log $SERVE_OUT)"
    fi
    changed "started pressluft serve in the background as $SVC_USER (pid $pid)"
    say "started with (pid file $PID_FILE, output $SERVE_OUT):"
  else
    say "it was started with (pid file $PID_FILE, output $SERVE_OUT):"
  fi
  printf '      %s\n' "$START_CMD"
  say "Nothing starts it after a reboot. To start it again then, run as root:"
  printf '      mkdir -p /run/sshd && service ssh start\n'
  printf '      %s\n' "$START_CMD"
  say "(or re-run this installer). Stop it with: kill \$(cat $PID_FILE)"
  SERVICE_HINT="pid file $PID_FILE; logs: $LOG_DIR/pressluft.log and $SERVE_OUT"
fi

# ==================================================================================================
step 9/9 "health check"
case "$LISTEN_HOST" in
  0.0.0.0 | '*') PROBE_HOST=127.0.0.1 ;;
  '[::]' | '::') PROBE_HOST='[::1]' ;;
  *) PROBE_HOST=$LISTEN_HOST ;;
esac
HEALTH_URL="http://$PROBE_HOST:$LISTEN_PORT/healthz"
healthy=
for _ in $(seq 1 120); do
  if curl -fsS --max-time 2 "$HEALTH_URL" 2>/dev/null | grep -q '"status":"ok"'; then
    healthy=1
    break
  fi
  sleep 0.5
done
if [ -z "$healthy" ]; then
  if systemd_present; then
    journalctl -u pressluft.service -n 30 --no-pager >&2 || true
  else
    tail -n 30 "$SERVE_OUT" >&2 || true
  fi
  die "$HEALTH_URL did not answer {\"status\":\"ok\"} within 60 s ($SERVICE_HINT)"
fi
say "$HEALTH_URL: ok"

PUBLIC_IP=${ENV_VALUES[PRESSLUFT_PUBLIC_IP]:-$PROBE_HOST}
if [ "$HTTPS_STATUS" = https ]; then
  https_ok=
  for _ in $(seq 1 20); do
    if curl -ksS --max-time 3 --resolve "$HTTPS_NAME:443:127.0.0.1" "https://$HTTPS_NAME/healthz" 2>/dev/null | grep -q '"status":"ok"'; then
      https_ok=1
      break
    fi
    sleep 0.5
  done
  [ -n "$https_ok" ] || die "https://$HTTPS_NAME/healthz (through nginx on this host) did not answer {\"status\":\"ok\"}; see $SERVICE_HINT"
  say "https://$HTTPS_NAME/healthz through nginx: ok"
fi
STEP=finished
if [ "$HTTPS_STATUS" = https ]; then
  printf '\n==> Pressluft is running: https://%s/\n' "$HTTPS_NAME"
else
  printf '\n==> Pressluft is running over PLAIN HTTP: http://%s:%s\n' "$PUBLIC_IP" "$LISTEN_PORT"
  say "WARNING: no certificate could be issued ($HTTPS_MESSAGE)"
  say "fix the cause (DNS, port 80 reachable from the ACME server, --acme-* options) and re-run this installer"
fi
case "$LISTEN_HOST" in
  0.0.0.0 | '*' | '[::]' | '::') ;;
  *) say "the control plane itself listens on $LISTEN_ADDR only (and the proxy socket $PROXY_SOCKET for nginx)" ;;
esac
say "service: $SERVICE_HINT"
say "on its first start the service registers this host as the local node and provisions it (Ansible, several minutes); follow it in the dashboard"
if [ "$CHANGES" = 0 ]; then
  printf '\ninstall: 0 changes (everything was already in place)\n'
else
  printf '\ninstall: %s change%s\n' "$CHANGES" "$([ "$CHANGES" = 1 ] || printf s)"
  printf '  - %s\n' "${CHANGE_LIST[@]}"
fi
