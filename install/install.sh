#!/bin/sh
# trellis installer: curl -fsSL <base>/latest/install.sh | sh   (or: sh install.sh [flags])
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
# default: what this machine runs), TRELLIS_LIBC (glibc | musl, default: detected),
# TRELLIS_NO_RUN_CHECK=1 (skip running the new binary before installing it, e.g. for another arch).
#
# Everything runs from main at the last line, so a download cut short by `curl | sh` runs nothing.
set -eu

usage() {
	cat <<'EOF'
usage: install.sh [--version V] [--relay] [--uninstall [--purge]]
  --version V   install release V (default: latest)
  --relay       new config gets [relay] enabled = true (an existing config is kept as it is)
  --uninstall   remove the binary and the service; config and identity stay
  --purge       with --uninstall: also remove /etc/trellis and /var/lib/trellis
environment: TRELLIS_BASE_URL, TRELLIS_ROOT (default /), TRELLIS_INIT (systemd|procd|none),
             TRELLIS_LIBC (glibc|musl), TRELLIS_NO_RUN_CHECK=1
EOF
}
say() { printf 'trellis-install: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

init_system() {
	if [ -n "${TRELLIS_INIT:-}" ]; then echo "$TRELLIS_INIT"; return; fi
	if [ -d /run/systemd/system ] || { ! live && command -v systemctl >/dev/null 2>&1; }; then echo systemd
	elif [ -f /etc/openwrt_release ] || [ -x /sbin/procd ]; then echo procd
	else echo none; fi
}
live() { [ "$P" = "" ]; }

detect_arch() {
	m=$(uname -m)
	case "$m" in
		x86_64|amd64) echo x64 ;;
		aarch64|arm64) echo arm64 ;;
		armv6l|armv7l|armv8l|arm) die "this is a 32-bit ARM system ($m): trellis needs a 64-bit OS (on a Raspberry Pi: Raspberry Pi OS 64-bit)" ;;
		*) die "unsupported architecture $m (trellis ships linux x64 and arm64)" ;;
	esac
}

# glibc first: a Debian host may carry a musl loader beside its glibc (the musl package).
detect_libc() {
	if getconf GNU_LIBC_VERSION >/dev/null 2>&1; then echo glibc
	elif [ -e /lib64/ld-linux-x86-64.so.2 ] || [ -e /lib/ld-linux-aarch64.so.1 ]; then echo glibc
	elif ls /lib/ld-musl-* >/dev/null 2>&1 || { command -v ldd >/dev/null 2>&1 && ldd --version 2>&1 | grep -qi musl; }; then echo musl
	else echo glibc; fi
}

fetch() { # URL FILE
	if command -v curl >/dev/null 2>&1; then curl -fsSL --retry 2 -o "$2" "$1"
	elif command -v wget >/dev/null 2>&1; then wget -q -O "$2" "$1"
	else die "need curl or wget"; fi
}
sha256() {
	if command -v sha256sum >/dev/null 2>&1; then sha256sum "$1" | cut -d' ' -f1
	elif command -v openssl >/dev/null 2>&1; then openssl dgst -sha256 "$1" | sed 's/.*= //'
	else die "need sha256sum or openssl to check the download"; fi
}

uninstall() {
	if live && [ "$(init_system)" = systemd ] && command -v systemctl >/dev/null 2>&1; then
		systemctl disable --now trellis.service 2>/dev/null || true
	elif live && [ -x "$INITD" ]; then
		"$INITD" stop 2>/dev/null || true; "$INITD" disable 2>/dev/null || true
	fi
	rm -f "$BIN" "$UNIT" "$INITD"
	if live && command -v systemctl >/dev/null 2>&1; then systemctl daemon-reload 2>/dev/null || true; fi
	if [ "$PURGE" = 1 ]; then rm -rf "$CONF_DIR" "$STATE_DIR"; say "removed trellis, its config and its identity"
	else say "removed trellis; kept $CONF_DIR and $STATE_DIR (use --uninstall --purge to remove them)"; fi
}

# Copy FILE to DEST with MODE through DEST.new and a rename, so DEST is always whole.
place() { # FILE DEST MODE
	mkdir -p "$(dirname "$2")"
	cp "$1" "$2.new" && chmod "$3" "$2.new" && mv -f "$2.new" "$2"
}

install_trellis() {
	ARCH=$(detect_arch)
	LIBC=${TRELLIS_LIBC:-$(detect_libc)}
	case "$LIBC" in glibc) SUFFIX= ;; musl) SUFFIX=-musl ;; *) die "TRELLIS_LIBC must be glibc or musl" ;; esac
	ASSET=trellis-linux-$ARCH$SUFFIX
	INIT=$(init_system)
	case "$INIT" in systemd|procd|none) ;; *) die "TRELLIS_INIT must be systemd, procd or none" ;; esac

	TMP=$(mktemp -d "${TMPDIR:-/tmp}/trellis-install.XXXXXX")
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

	# Everything is verified. The binary goes beside the old one first and must run there (/tmp may
	# be noexec; a musl system may lack libstdc++), then every file is moved in by an atomic rename.
	upgrade=0
	if [ -x "$BIN" ]; then upgrade=1; fi
	mkdir -p "$(dirname "$BIN")"
	NEW_BIN=$BIN.new
	cp "$TMP/$ASSET" "$NEW_BIN" && chmod 755 "$NEW_BIN"
	if [ "${TRELLIS_NO_RUN_CHECK:-0}" != 1 ]; then
		if ! out=$("$NEW_BIN" version 2>&1); then
			hint=
			if [ "$LIBC" = musl ]; then hint=" (musl systems need libstdc++ and libgcc: apk add libstdc++ / opkg install libstdcpp)"; fi
			die "the downloaded binary does not run here: $out$hint; nothing installed"
		fi
		say "new binary: $out"
	fi
	mv -f "$NEW_BIN" "$BIN"
	NEW_BIN=

	mkdir -p "$CONF_DIR" && chmod 755 "$CONF_DIR"
	if [ ! -f "$CONF_DIR/trellis.toml" ]; then
		if [ "$RELAY" = 1 ]; then
			sed 's/^# enabled = false$/enabled = true/' "$TMP/trellis.toml" > "$TMP/trellis.toml.relay"
			grep -q '^enabled = true$' "$TMP/trellis.toml.relay" || die "the release's trellis.toml has no '# enabled = false' line under [relay] to turn on"
			mv "$TMP/trellis.toml.relay" "$TMP/trellis.toml"
		fi
		place "$TMP/trellis.toml" "$CONF_DIR/trellis.toml" 644
		if [ "$RELAY" = 1 ]; then say "wrote $CONF_DIR/trellis.toml (relay enabled)"; else say "wrote $CONF_DIR/trellis.toml"; fi
	else
		say "kept $CONF_DIR/trellis.toml"
		if [ "$RELAY" = 1 ]; then say "--relay does not change an existing config: set enabled = true under [relay] in $CONF_DIR/trellis.toml"; fi
	fi
	mkdir -p "$STATE_DIR" && chmod 700 "$STATE_DIR"
	if live; then ensure_user; chown -R trellis "$STATE_DIR" 2>/dev/null || true; fi

	case "$INIT" in
		systemd)
			place "$TMP/trellis.service" "$UNIT" 644
			if live && [ -d /run/systemd/system ]; then
				systemctl daemon-reload
				systemctl enable trellis.service >/dev/null 2>&1
				if [ "$upgrade" = 1 ]; then systemctl try-restart trellis.service; else systemctl start trellis.service; fi
			fi ;;
		procd)
			place "$TMP/trellis.init" "$INITD" 755
			if live; then "$INITD" enable; if [ "$upgrade" = 1 ]; then "$INITD" restart; else "$INITD" start; fi; fi ;;
		none) say "no service manager found: run 'trellis up --config /etc/trellis/trellis.toml' yourself" ;;
	esac

	if [ "$upgrade" = 1 ]; then say "upgraded $BIN (config and identity kept)"; else say "installed $BIN"; fi
	if live; then say "node id: $("$BIN" init --state /var/lib/trellis 2>/dev/null || echo '(run trellis init)')"; fi
}

# The node's own system user (no login, no home of its own): systemd starts the node as it, and
# `trellis up` started as root (procd, by hand) drops to it after opening the TUN.
ensure_user() {
	if grep -q '^trellis:' /etc/passwd 2>/dev/null; then return; fi
	if command -v useradd >/dev/null 2>&1; then
		useradd --system --user-group --home-dir /var/lib/trellis --no-create-home --shell /usr/sbin/nologin trellis
	elif command -v adduser >/dev/null 2>&1 && command -v addgroup >/dev/null 2>&1; then
		addgroup -S trellis 2>/dev/null || true
		adduser -S -D -H -h /var/lib/trellis -s /bin/false -G trellis trellis
	else
		# OpenWrt has neither: take the first free id from 320 and write the entries directly.
		id=320
		while grep -q "^[^:]*:[^:]*:$id:" /etc/passwd /etc/group 2>/dev/null; do id=$((id + 1)); done
		echo "trellis:x:$id:" >> /etc/group
		echo "trellis:x:$id:$id:trellis:/var/lib/trellis:/bin/false" >> /etc/passwd
		if [ -f /etc/shadow ]; then echo "trellis:*:0:0:99999:7:::" >> /etc/shadow; fi
	fi
	grep -q '^trellis:' /etc/passwd || die "could not create the system user trellis"
	say "created system user trellis"
}

cleanup() {
	if [ -n "${TMP:-}" ]; then rm -rf "$TMP"; fi
	if [ -n "${NEW_BIN:-}" ]; then rm -f "$NEW_BIN"; fi
}

main() {
	BASE_URL=${TRELLIS_BASE_URL:-https://get.trellis.example/releases}
	ROOT=${TRELLIS_ROOT:-/}
	VERSION=latest
	MODE=install
	RELAY=0
	PURGE=0
	TMP=
	NEW_BIN=

	while [ $# -gt 0 ]; do
		case "$1" in
			--version) [ $# -ge 2 ] || die "--version needs a value"; VERSION=$2; shift ;;
			--version=*) VERSION=${1#*=} ;;
			--relay) RELAY=1 ;;
			--uninstall) MODE=uninstall ;;
			--purge) PURGE=1 ;;
			-h|--help) usage; exit 0 ;;
			*) usage >&2; die "unknown flag $1" ;;
		esac
		shift
	done
	[ "$PURGE" = 0 ] || [ "$MODE" = uninstall ] || die "--purge goes with --uninstall"
	case "$VERSION" in ""|*/*|*..*) die "bad --version '$VERSION'" ;; esac
	case "$ROOT" in /*) ;; *) die "TRELLIS_ROOT must be an absolute path (got '$ROOT')" ;; esac

	P=${ROOT%/}
	BIN=$P/usr/local/bin/trellis
	CONF_DIR=$P/etc/trellis
	STATE_DIR=$P/var/lib/trellis
	UNIT=$P/etc/systemd/system/trellis.service
	INITD=$P/etc/init.d/trellis

	trap cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	if [ "$MODE" = uninstall ]; then uninstall; else install_trellis; fi
}

main "$@"
