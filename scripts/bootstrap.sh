#!/usr/bin/env bash
# Idempotent set-up: the system packages the lab uses and the project's venv.
# Fast (well under a second) when everything is already in place.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian package -> a command it provides (checked first, so a present tool costs no dpkg call).
declare -A PKGS=(
  [iproute2]=ip
  [nftables]=nft
  [tcpdump]=tcpdump
  [iputils-ping]=ping
  [tshark]=tshark
  [procps]=ps
  [ethtool]=ethtool
  [openvswitch-switch]=ovs-vswitchd
  [frr]=vtysh
)
missing=()
for pkg in "${!PKGS[@]}"; do
  command -v "${PKGS[$pkg]}" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "bootstrap: missing system packages (${missing[*]}); run as root to install them" >&2
    exit 1
  fi
  echo "bootstrap: installing ${missing[*]} with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  # tshark asks whether non-root users may capture; answer no without a prompt.
  echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
  # The lab runs its own ovsdb-server/ovs-vswitchd and FRR daemons per node; the packages
  # must not start the host-wide Open vSwitch or FRR services. A policy-rc.d that denies only
  # those, present for the install alone (an existing one is left as it is).
  policy=/usr/sbin/policy-rc.d
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nfor a; do case "$a" in openvswitch*|ovs*|frr*) exit 101;; esac; done\nexit 0\n' >"$policy"
    chmod 755 "$policy"
    trap 'rm -f "$policy"' EXIT
  fi
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
stamp=.venv/.bootstrap-stamp
if [ ! -x .venv/bin/python ] || [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "bootstrap: creating .venv and installing the project (editable, with test and bench extras)"
  [ -x .venv/bin/python ] || "$PY" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e '.[test,bench]'
  touch "$stamp"
fi
