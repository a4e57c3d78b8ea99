#!/usr/bin/env bash
# End-to-end test of node_provision on this machine (root, Debian 12 / Ubuntu 24.04):
#   1. scripts/e2e-setup (sshd, Ansible virtualenv)
#   2. a key for root@127.0.0.1, inventory.ini and vars.json written like the control plane does
#      (which writes vars.yml with every string tagged !unsafe; these values are all ours)
#   3. ansible-playbook node-provision.yml, twice; the second run must report changed=0
#   4. tests/e2e/check-node.sh against the node and the result file
#
# Usage: tests/e2e/provision.sh [--no-firewall] [--keep]
#   --no-firewall  manage_firewall=false (containers, CI machines whose own ports must stay open)
#   --keep         keep the work directory (key, vars, logs, result.json)
# Environment: PRESSLUFT_E2E_DIR (work directory, default a fresh mktemp -d),
#              PRESSLUFT_BINARY (node helper to install, default a stub printing "pressluft 0.0.0").
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
manage_firewall=true
keep=0
for arg in "$@"; do
  case "$arg" in
    --no-firewall) manage_firewall=false ;;
    --keep) keep=1 ;;
    *) echo "unknown argument: $arg" >&2; exit 64 ;;
  esac
done

say() { printf '\n==> %s\n' "$*"; }
fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || fail "run as root"
"$repo/scripts/e2e-setup"

work=${PRESSLUFT_E2E_DIR:-$(mktemp -d /tmp/pressluft-e2e.XXXXXX)}
mkdir -p "$work"
chmod 0700 "$work"
cleanup() {
  if [ "$keep" = 1 ]; then
    echo "work directory kept: $work (its key stays authorized for root)"
  else
    if [ -f "$work/id_ed25519.pub" ]; then
      grep -vxF "$(cat "$work/id_ed25519.pub")" /root/.ssh/authorized_keys >"$work/authorized_keys" || true
      cat "$work/authorized_keys" >/root/.ssh/authorized_keys
    fi
    rm -rf "$work"
  fi
}
trap cleanup EXIT

say "key, inventory and extra-vars in $work"
key=$work/id_ed25519
[ -f "$key" ] || ssh-keygen -q -t ed25519 -N '' -C pressluft-e2e -f "$key"
touch /root/.ssh/authorized_keys
chmod 0600 /root/.ssh/authorized_keys
grep -qxF "$(cat "$key.pub")" /root/.ssh/authorized_keys || cat "$key.pub" >>/root/.ssh/authorized_keys
binary=${PRESSLUFT_BINARY:-}
if [ -z "$binary" ]; then
  binary=$work/pressluft
  # shellcheck disable=SC2016 # the stub's own shell code, expanded when it runs
  printf '#!/bin/sh\n[ "${1:-}" = --version ] && { echo "pressluft 0.0.0"; exit 0; }\necho "stub pressluft: $*" >&2\nexit 2\n' >"$binary"
  chmod 0755 "$binary"
fi
printf '[target]\n127.0.0.1 ansible_port=22 ansible_user=root ansible_ssh_private_key_file=%s\n' "$key" >"$work/inventory.ini"
/usr/bin/python3 - "$work/vars.json" "$manage_firewall" "$work/result.json" "$binary" <<'EOF'
import json, sys
path, manage_firewall, result, binary = sys.argv[1:5]
json.dump({
    "node_hostname": "127.0.0.1", "node_ssh_user": "root", "node_public_ip": "",
    "manage_firewall": manage_firewall == "true", "is_local_node": True,
    "control_plane_port": 8080, "control_plane_domain": "",
    "pressluft_result_path": result, "pressluft_binary_path": binary,
}, open(path, "w"))
EOF
chmod 0600 "$work/inventory.ini" "$work/vars.json"

run_playbook() { # log file
  (
    cd "$repo/ansible"
    ANSIBLE_CONFIG=$repo/ansible/ansible.cfg ansible-playbook -i "$work/inventory.ini" -e "@$work/vars.json" \
      --ssh-extra-args="-o StrictHostKeyChecking=accept-new -o UserKnownHostsFile=$work/known_hosts" \
      playbooks/node-provision.yml
  ) >"$1" 2>&1
}

for run in 1 2; do
  say "node-provision.yml, run $run"
  start=$(date +%s)
  if ! run_playbook "$work/run$run.log"; then
    tail -n 60 "$work/run$run.log"
    fail "run $run of node-provision.yml failed (log: $work/run$run.log)"
  fi
  recap=$(grep -E '^127\.0\.0\.1 +: ok=' "$work/run$run.log")
  echo "$recap  ($(($(date +%s) - start)) s)"
done
[[ "$recap" == *" changed=0 "* ]] || {
  grep -B3 'changed:' "$work/run2.log" | grep TASK || true
  fail "the second run changed something: $recap"
}
echo "second run: changed=0"
cat "$work/result.json"

say "check-node.sh"
"$repo/tests/e2e/check-node.sh" "$work/result.json"
