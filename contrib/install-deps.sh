#!/bin/sh
# Installs every Debian package acog-batch needs to build, run and test.
# Safe to run again: it installs only what is missing.
set -eu
PKGS="build-essential pkg-config libcurl4-openssl-dev libcjson-dev libsqlite3-dev
libyaml-dev uuid-dev libssl-dev ffmpeg espeak-ng fonts-dejavu-core sqlite3 python3 python3-pytest python3-pytest-xdist
strace openssl ca-certificates procps file man-db tzdata clang-format chromium clang valgrind rsync
flite festival festvox-kallpc16k festvox-us-slt-hts"
missing=""
for p in $PKGS; do
	dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
if [ -n "$missing" ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "install-deps: need root to install:$missing" >&2
		exit 77
	fi
	echo "install-deps: installing$missing"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
fi
