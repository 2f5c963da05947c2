#!/usr/bin/env bash
# Install every Debian package posnet's demo, real-tool checks and lab need.
# Idempotent; services must not start on install (no systemd here, and a
# daemon on 0.0.0.0 would be a surprise on a developer machine).
set -euo pipefail
PKGS=(make git nftables iptables nginx apache2 apache2-utils dnsmasq-base inadyn
      squid-openssl openssh-server openssh-client iproute2 curl openssl
      util-linux procps python3-venv ddclient libio-socket-ssl-perl ipset busybox
      chromium)  # headless browser for the report tests
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" -ne 0 ]; then
  echo "posnet: missing Debian packages (${missing[*]}); run as root or install them" >&2
  exit 1
fi
created_policy=0
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
  chmod 755 /usr/sbin/policy-rc.d
  created_policy=1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
[ "$created_policy" -eq 1 ] && rm -f /usr/sbin/policy-rc.d
exit 0
