#!/usr/bin/env bash
# Installs the Debian packages onekeyd builds, tests and runs with (Debian 12). Idempotent.
set -euo pipefail
PACKAGES=(libudev-dev libsqlite3-dev libmosquitto-dev libsystemd-dev zlib1g-dev mosquitto mosquitto-clients
          umockdev libumockdev-dev socat tzdata systemd python3 openssl procps
          udev util-linux systemd-container debootstrap dpkg-dev binutils faketime)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "installing: ${missing[*]}"
  $SUDO apt-get update
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y "${missing[@]}"
fi
# Debian's postinst starts a system mosquitto on port 1883; the tests and the demo use their own
# brokers on free loopback ports and do not need it.
