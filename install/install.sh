#!/bin/sh
# trellis installer: curl -fsSL <base>/install.sh | sh   (or: sh install.sh [flags])
#
# Downloads the binary for this machine (x64 or arm64, glibc or musl), its service files and the
# example config from a release directory, checks each against SHA256SUMS, and installs them. A re-run
# upgrades in place and keeps the config and the identity.
#
#   --version V     install release V (default: latest)
#   --relay         write a config with [relay] enabled = true (only when no config exists yet)
#   --uninstall     remove the binary and the service (config and identity stay)
#   --purge         with --uninstall: also remove /etc/trellis and /var/lib/trellis
#
# Environment: TRELLIS_BASE_URL (release base, default below), TRELLIS_ROOT (prefix of every path
# written, default /; services are only started when it is /), TRELLIS_INIT (systemd | procd | none,
# default: what this machine runs), TRELLIS_LIBC (glibc | musl, default: detected).
set -eu

BASE_URL=${TRELLIS_BASE_URL:-https://get.trellis.example/releases}
ROOT=${TRELLIS_ROOT:-/}
VERSION=latest
MODE=install
RELAY=0
PURGE=0

say() { printf 'trellis-install: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

while [ $# -gt 0 ]; do
	case "$1" in
		--version) [ $# -ge 2 ] || die "--version needs a value"; VERSION=$2; shift ;;
		--version=*) VERSION=${1#*=} ;;
		--relay) RELAY=1 ;;
		--uninstall) MODE=uninstall ;;
		--purge) PURGE=1 ;;
		-h|--help) sed -n '2,18p' "$0" 2>/dev/null | sed 's/^# \{0,1\}//'; exit 0 ;;
		*) die "unknown flag $1 (try --help)" ;;
	esac
	shift
done

P=${ROOT%/}
BIN=$P/usr/local/bin/trellis
CONF_DIR=$P/etc/trellis
STATE_DIR=$P/var/lib/trellis
UNIT=$P/etc/systemd/system/trellis.service
INITD=$P/etc/init.d/trellis
live() { [ "$P" = "" ]; }

init_system() {
	if [ -n "${TRELLIS_INIT:-}" ]; then echo "$TRELLIS_INIT"; return; fi
	if [ -d /run/systemd/system ] || { ! live && command -v systemctl >/dev/null 2>&1; }; then echo systemd
	elif [ -f /etc/openwrt_release ] || [ -x /sbin/procd ]; then echo procd
	else echo none; fi
}

if [ "$MODE" = uninstall ]; then
	if live && [ "$(init_system)" = systemd ] && command -v systemctl >/dev/null 2>&1; then
		systemctl disable --now trellis.service 2>/dev/null || true
	elif live && [ -x "$INITD" ]; then
		"$INITD" stop 2>/dev/null || true; "$INITD" disable 2>/dev/null || true
	fi
	rm -f "$BIN" "$UNIT" "$INITD"
	if live && command -v systemctl >/dev/null 2>&1; then systemctl daemon-reload 2>/dev/null || true; fi
	if [ "$PURGE" = 1 ]; then rm -rf "$CONF_DIR" "$STATE_DIR"; say "removed trellis, its config and its identity"
	else say "removed trellis; kept $CONF_DIR and $STATE_DIR (use --purge to remove them)"; fi
	exit 0
fi

case "$(uname -m)" in
	x86_64|amd64) ARCH=x64 ;;
	aarch64|arm64) ARCH=arm64 ;;
	*) die "unsupported architecture $(uname -m) (trellis ships linux x64 and arm64)" ;;
esac
LIBC=${TRELLIS_LIBC:-}
if [ -z "$LIBC" ]; then
	if ls /lib/ld-musl-* >/dev/null 2>&1 || { command -v ldd >/dev/null 2>&1 && ldd --version 2>&1 | grep -qi musl; }; then LIBC=musl; else LIBC=glibc; fi
fi
case "$LIBC" in glibc) SUFFIX= ;; musl) SUFFIX=-musl ;; *) die "TRELLIS_LIBC must be glibc or musl" ;; esac
ASSET=trellis-linux-$ARCH$SUFFIX
INIT=$(init_system)

fetch() { # URL FILE
	if command -v curl >/dev/null 2>&1; then curl -fsSL --retry 2 -o "$2" "$1"
	elif command -v wget >/dev/null 2>&1; then wget -q -O "$2" "$1"
	else die "need curl or wget"; fi
}
sha256() {
	if command -v sha256sum >/dev/null 2>&1; then sha256sum "$1" | cut -d' ' -f1
	else openssl dgst -sha256 "$1" | sed 's/.*= //'; fi
}

TMP=$(mktemp -d "${TMPDIR:-/tmp}/trellis-install.XXXXXX")
trap 'rm -rf "$TMP"' EXIT INT TERM
URL=${BASE_URL%/}/$VERSION
say "downloading $ASSET ($VERSION) from $URL"
fetch "$URL/SHA256SUMS" "$TMP/SHA256SUMS" || die "cannot download $URL/SHA256SUMS"
for f in "$ASSET" trellis.toml trellis.service trellis.init; do
	fetch "$URL/$f" "$TMP/$f" || die "cannot download $URL/$f"
	want=$(awk -v f="$f" '$2 == f || $2 == "*" f { print $1 }' "$TMP/SHA256SUMS")
	[ -n "$want" ] || die "$f is not listed in SHA256SUMS"
	got=$(sha256 "$TMP/$f")
	[ "$want" = "$got" ] || die "checksum mismatch for $f (want $want, got $got): refusing to install"
done
chmod 755 "$TMP/$ASSET"

# Everything is verified: now install, each file by an atomic rename.
upgrade=0
[ -x "$BIN" ] && upgrade=1
mkdir -p "$(dirname "$BIN")"
cp "$TMP/$ASSET" "$BIN.new" && chmod 755 "$BIN.new" && mv -f "$BIN.new" "$BIN"

mkdir -p "$CONF_DIR" && chmod 755 "$CONF_DIR"
if [ ! -f "$CONF_DIR/trellis.toml" ]; then
	if [ "$RELAY" = 1 ]; then sed 's/^# enabled = false$/enabled = true/' "$TMP/trellis.toml" > "$CONF_DIR/trellis.toml.new"
	else cp "$TMP/trellis.toml" "$CONF_DIR/trellis.toml.new"; fi
	chmod 644 "$CONF_DIR/trellis.toml.new" && mv "$CONF_DIR/trellis.toml.new" "$CONF_DIR/trellis.toml"
	say "wrote $CONF_DIR/trellis.toml"
else
	say "kept $CONF_DIR/trellis.toml"
fi
mkdir -p "$STATE_DIR" && chmod 700 "$STATE_DIR"

case "$INIT" in
	systemd)
		mkdir -p "$(dirname "$UNIT")"
		cp "$TMP/trellis.service" "$UNIT.new" && chmod 644 "$UNIT.new" && mv -f "$UNIT.new" "$UNIT"
		if live && [ -d /run/systemd/system ]; then
			systemctl daemon-reload
			systemctl enable trellis.service >/dev/null 2>&1
			if [ "$upgrade" = 1 ]; then systemctl try-restart trellis.service; else systemctl start trellis.service; fi
		fi ;;
	procd)
		mkdir -p "$(dirname "$INITD")"
		cp "$TMP/trellis.init" "$INITD.new" && chmod 755 "$INITD.new" && mv -f "$INITD.new" "$INITD"
		if live; then "$INITD" enable; if [ "$upgrade" = 1 ]; then "$INITD" restart; else "$INITD" start; fi; fi ;;
	none) say "no service manager found: run 'trellis up' yourself" ;;
	*) die "TRELLIS_INIT must be systemd, procd or none" ;;
esac

if [ "$upgrade" = 1 ]; then say "upgraded $BIN (config and identity kept)"; else say "installed $BIN"; fi
live && say "node id: $("$BIN" init --state /var/lib/trellis 2>/dev/null || echo '(run trellis init)')"
exit 0
