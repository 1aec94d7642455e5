#!/usr/bin/env bash
# build-deps.sh — builds the static dependency set of acog-batch and proves it works.
#
# 1. installs the Debian packages it needs (only those missing);
# 2. fetches Debian's source packages of curl and cjson into build/static/src/;
# 3. builds a minimal static libcurl (HTTP/HTTPS only, OpenSSL, c-ares resolver) and a
#    static cJSON into build/static/prefix/;
# 4. writes build/static/prefix/flags.mk (STATIC_CFLAGS, STATIC_LIBS) for the Makefile;
# 5. links contrib/static/smoke.c with -static and runs it against local HTTP and HTTPS
#    servers (by 127.0.0.1, by "localhost", and by a name that only a local DNS server
#    knows, resolved by c-ares), and checks with strace that glibc's NSS is never loaded.
#
# Every step leaves a stamp in build/static/stamps/, so a second run does nothing and takes
# about a second.  A stamp records the recipe it was made with: change the recipe (say, a
# configure flag) and only that component is rebuilt.
#
# Usage: contrib/static/build-deps.sh [--force] [--check] [--no-smoke]
#   --force     rebuild libcurl and cJSON even when their stamps are current
#   --check     run the smoke test again even when its stamp is current
#   --no-smoke  stop after writing flags.mk
# Environment: ACOG_STATIC_DIR (default: <repo>/build/static), JOBS (default: 2).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${ACOG_STATIC_DIR:-$root/build/static}
src=$out/src
work=$out/work
prefix=$out/prefix
stamps=$out/stamps
logs=$out/log
jobs=${JOBS:-2}
force=0 check=0 smoke=1

# Bump when the build recipe changes in a way the stamps cannot see.
recipe_version=1

packages=(build-essential dpkg-dev libc-ares-dev libssl-dev zlib1g-dev libsqlite3-dev
	libyaml-dev uuid-dev pkg-config autoconf automake libtool file python3 openssl strace)

# Everything libcurl can do besides HTTP(S) is left out: fewer objects, fewer surprises
# when linking statically, nothing that could reach glibc's NSS behind our back.
curl_configure=(--disable-shared --enable-static --disable-dependency-tracking
	--with-openssl --enable-ares --with-zlib
	--enable-http --disable-ftp --disable-file --disable-ldap --disable-ldaps
	--disable-rtsp --disable-dict --disable-telnet --disable-tftp --disable-pop3
	--disable-imap --disable-smb --disable-smtp --disable-gopher --disable-mqtt
	--disable-netrc --disable-manual --disable-ntlm-wb --disable-threaded-resolver
	--without-libpsl --without-nghttp2 --without-ngtcp2 --without-nghttp3
	--without-quiche --without-msh3 --without-hyper --without-libidn2 --without-brotli
	--without-zstd --without-librtmp --without-libssh2 --without-libssh --without-wolfssh
	--without-libgsasl --without-zsh-functions-dir --without-fish-functions-dir
	--with-ca-bundle=/etc/ssl/certs/ca-certificates.crt --with-ca-path=/etc/ssl/certs)
build_cflags="-O2 -g -fstack-protector-strong -Wformat -Werror=format-security"
build_cppflags="-D_FORTIFY_SOURCE=2"

log() { printf 'build-deps: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

usage() {
	sed -n '/^# Usage:/,/^# Environment:/s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
}

# run_logged LOGFILE COMMAND...: runs COMMAND with its output in LOGFILE; on failure shows
# the end of the log and stops the script.
run_logged() {
	local logfile=$1
	shift
	printf '+ [%(%T)T] %s\n' -1 "$*" >>"$logfile"
	if ! "$@" >>"$logfile" 2>&1; then
		tail -n 40 "$logfile" >&2
		die "'$*' failed; full log in $logfile"
	fi
}

# stamp_ok NAME CONTENT: true when the stamp exists and records CONTENT.
stamp_ok() {
	[[ -f $stamps/$1 ]] && [[ $(<"$stamps/$1") == "$2" ]]
}

stamp_set() {
	printf '%s\n' "$2" >"$stamps/$1.tmp"
	mv -f "$stamps/$1.tmp" "$stamps/$1"
}

as_root() {
	if [[ $(id -u) -eq 0 ]]; then
		"$@"
	elif command -v sudo >/dev/null; then
		sudo "$@"
	else
		die "need root for: $*"
	fi
}

# --- 1. packages -------------------------------------------------------------------------

ensure_packages() {
	local missing=() p
	for p in "${packages[@]}"; do
		dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
	done
	((${#missing[@]} == 0)) && return 0
	log "installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	if ! as_root apt-get install -y -q --no-install-recommends "${missing[@]}" \
	    >"$logs/apt-install.log" 2>&1; then
		# Package lists may be stale or absent on a fresh machine.
		as_root apt-get update -q >>"$logs/apt-install.log" 2>&1 ||
			die "apt-get update failed; see $logs/apt-install.log"
		as_root apt-get install -y -q --no-install-recommends "${missing[@]}" \
		    >>"$logs/apt-install.log" 2>&1 ||
			die "apt-get install failed; see $logs/apt-install.log"
	fi
}

# --- 2. source packages ------------------------------------------------------------------

# (No "| grep -q" here: under pipefail, grep's early exit would fail apt-cache with SIGPIPE.)
have_deb_src() {
	local o
	o=$(apt-cache showsrc --only-source curl 2>/dev/null) || return 1
	[[ $o == Package:* || $o == *$'\n'Package:* ]]
}

# Adds deb-src twins of the configured deb sources, in a file of our own, when none exist.
ensure_deb_src() {
	have_deb_src && return 0
	# deb-src lines may exist with their lists not fetched yet.
	if grep -rqsE '^[[:space:]]*deb-src[[:space:]]|^Types:.*deb-src' \
	    /etc/apt/sources.list /etc/apt/sources.list.d/; then
		as_root apt-get update -q >"$logs/apt-update.log" 2>&1 || true
		have_deb_src && return 0
	fi
	log "no deb-src sources: adding /etc/apt/sources.list.d/acog-batch-deb-src.*"
	local tmp f
	tmp=$(mktemp)
	# deb822 files: copy every enabled stanza of Types: deb, as Types: deb-src.
	if compgen -G '/etc/apt/sources.list.d/*.sources' >/dev/null; then
		awk 'BEGIN { RS = ""; FS = "\n" }
		{
			types = ""; enabled = 1
			for (i = 1; i <= NF; i++) {
				if ($i ~ /^Types:/) types = $i
				if ($i ~ /^Enabled:[ \t]*no/) enabled = 0
			}
			if (!enabled || types ~ /deb-src/ || types !~ /[ \t]deb([ \t]|$)/) next
			for (i = 1; i <= NF; i++)
				print ($i ~ /^Types:/ ? "Types: deb-src" : $i)
			print ""
		}' /etc/apt/sources.list.d/*.sources >"$tmp"
		[[ -s $tmp ]] && as_root install -m 0644 "$tmp" \
			/etc/apt/sources.list.d/acog-batch-deb-src.sources
	fi
	# One-line format: each "deb ..." line becomes "deb-src ...".
	: >"$tmp"
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[[ -f $f ]] || continue
		sed -n 's/^[ \t]*deb[ \t]/deb-src /p' "$f" >>"$tmp"
	done
	[[ -s $tmp ]] && as_root install -m 0644 "$tmp" \
		/etc/apt/sources.list.d/acog-batch-deb-src.list
	rm -f "$tmp"
	as_root apt-get update -q >>"$logs/apt-update.log" 2>&1 ||
		die "apt-get update failed; see $logs/apt-update.log"
	have_deb_src || die "still no deb-src for curl after adding sources"
}

# fetch_source PKG: unpacks Debian's source package PKG (patches applied) under $src and
# records the directory and version in the stamp src-PKG.
fetch_source() {
	local pkg=$1 tmp dsc dir version
	if [[ -f $stamps/src-$pkg ]]; then
		dir=$(sed -n 1p "$stamps/src-$pkg")
		[[ -d $src/$dir ]] && return 0
	fi
	ensure_deb_src
	log "fetching Debian source package $pkg"
	tmp=$src/.fetch-$pkg
	rm -rf "$tmp"
	mkdir -p "$tmp"
	# -o APT::Sandbox::User=root: the _apt user cannot write into a root-owned work tree.
	(cd "$tmp" && run_logged "$logs/src-$pkg.log" \
		apt-get source -q --only-source -o APT::Sandbox::User=root "$pkg")
	dsc=$(cd "$tmp" && ls ./*.dsc)
	version=$(sed -n 's/^Version: //p' "$tmp/$dsc")
	dir=$(cd "$tmp" && find . -mindepth 1 -maxdepth 1 -type d -printf '%f\n')
	[[ -n $dir && $(wc -l <<<"$dir") -eq 1 ]] || die "cannot find the unpacked $pkg source"
	rm -rf "${src:?}/$dir" "$src/$pkg-debian"
	mv "$tmp/$dir" "$src/$dir"
	mkdir -p "$src/$pkg-debian"
	mv "$tmp"/*.dsc "$tmp"/*.tar.* "$src/$pkg-debian/" 2>/dev/null || true
	rm -rf "$tmp"
	stamp_set "src-$pkg" "$dir"$'\n'"$version"
}

src_dir() { sed -n 1p "$stamps/src-$1"; }
src_version() { sed -n 2p "$stamps/src-$1"; }

# --- 3. libraries ------------------------------------------------------------------------

build_curl() {
	local dir recipe b logf=$logs/curl.log
	dir=$(src_dir curl)
	recipe="v$recipe_version $(src_version curl) $build_cflags $build_cppflags ${curl_configure[*]}"
	if ((!force)) && stamp_ok curl "$recipe" && [[ -f $prefix/lib/libcurl.a ]]; then
		return 0
	fi
	log "building static libcurl from Debian curl $(src_version curl) (log: $logf)"
	: >"$logf"
	b=$work/curl
	rm -rf "$b"
	mkdir -p "$work"
	cp -a "$src/$dir" "$b"
	# Debian's source has the GnuTLS and NSS flavour patches applied last; the OpenSSL
	# flavour (libcurl4) is built without them, as debian/rules does with "quilt pop".
	if grep -q 'libcurl-nss.la' "$b/lib/Makefile.am"; then
		run_logged "$logf" patch -d "$b" -R -p1 -i debian/patches/99_nss.patch
	fi
	if grep -q 'libcurl-gnutls.la' "$b/lib/Makefile.am"; then
		run_logged "$logf" patch -d "$b" -R -p1 -i debian/patches/90_gnutls.patch
	fi
	grep -q '^lib_LTLIBRARIES = libcurl.la' "$b/lib/Makefile.am" ||
		die "curl source still carries a flavour patch"
	# Debian patches touch configure.ac and Makefile.am, so regenerate as dh_autoreconf does.
	(cd "$b" && run_logged "$logf" autoreconf -fi)
	(cd "$b" && run_logged "$logf" ./configure --prefix="$prefix" --libdir="$prefix/lib" \
		CFLAGS="$build_cflags" CPPFLAGS="$build_cppflags" "${curl_configure[@]}")
	grep -q '^#define USE_ARES 1' "$b/lib/curl_config.h" || die "configure did not enable c-ares"
	grep -q '^#define USE_OPENSSL 1' "$b/lib/curl_config.h" || die "configure did not enable OpenSSL"
	# Only the library, its headers, libcurl.pc and curl-config: no curl tool, no docs.
	run_logged "$logf" make -C "$b/lib" -j"$jobs"
	run_logged "$logf" make -C "$b/lib" install
	run_logged "$logf" make -C "$b/include" install
	run_logged "$logf" make -C "$b" install-pkgconfigDATA install-binSCRIPTS
	rm -f "$prefix/lib/libcurl.la"
	stamp_set curl "$recipe"
}

build_cjson() {
	local dir recipe b cc=${CC:-cc} logf=$logs/cjson.log
	dir=$(src_dir cjson)
	recipe="v$recipe_version $(src_version cjson) $build_cflags $build_cppflags"
	if ((!force)) && stamp_ok cjson "$recipe" && [[ -f $prefix/lib/libcjson.a ]]; then
		return 0
	fi
	log "building static cJSON from Debian cjson $(src_version cjson) (log: $logf)"
	: >"$logf"
	b=$work/cjson
	rm -rf "$b"
	mkdir -p "$b" "$prefix/lib" "$prefix/include/cjson"
	# cJSON is one file; its upstream build adds nothing a static archive needs.
	# shellcheck disable=SC2086
	run_logged "$logf" "$cc" $build_cflags $build_cppflags -std=c89 -Wall \
		-c "$src/$dir/cJSON.c" -o "$b/cJSON.o"
	run_logged "$logf" ar rcs "$b/libcjson.a" "$b/cJSON.o"
	install -m 0644 "$b/libcjson.a" "$prefix/lib/libcjson.a"
	# Debian's libcjson-dev layout, so both <cjson/cJSON.h> and <cJSON.h> work.
	install -m 0644 "$src/$dir/cJSON.h" "$prefix/include/cjson/cJSON.h"
	stamp_set cjson "$recipe"
}

# --- 4. flags.mk -------------------------------------------------------------------------

write_flags() {
	local multiarch sys tmp
	multiarch=$(gcc -print-multiarch)
	sys=/usr/lib/$multiarch
	local a
	for a in libcares libssl libcrypto libz libsqlite3 libyaml libuuid; do
		[[ -f $sys/$a.a ]] || die "$sys/$a.a is missing (is its -dev package installed?)"
	done
	tmp=$prefix/flags.mk.tmp
	cat >"$tmp" <<EOF
# Generated by contrib/static/build-deps.sh; do not edit.
# Debian curl $(src_version curl), cjson $(src_version cjson).
STATIC_PREFIX := $prefix
STATIC_CFLAGS := -I\$(STATIC_PREFIX)/include -I\$(STATIC_PREFIX)/include/cjson -DCURL_STATICLIB
STATIC_LIBS := -static \$(STATIC_PREFIX)/lib/libcurl.a \$(STATIC_PREFIX)/lib/libcjson.a $sys/libcares.a $sys/libssl.a $sys/libcrypto.a $sys/libz.a $sys/libsqlite3.a $sys/libyaml.a $sys/libuuid.a -lpthread -ldl -lm
EOF
	# Keep the old file, and its mtime, when nothing changed: make should not relink.
	if cmp -s "$tmp" "$prefix/flags.mk"; then
		rm -f "$tmp"
	else
		mv -f "$tmp" "$prefix/flags.mk"
		log "wrote $prefix/flags.mk"
	fi
}

# mk_var NAME: the value of NAME in flags.mk, with $(STATIC_PREFIX) expanded.
mk_var() {
	local v
	v=$(sed -n "s/^$1 := //p" "$prefix/flags.mk")
	printf '%s' "${v//\$(STATIC_PREFIX)/$prefix}"
}

# --- 5. smoke test -----------------------------------------------------------------------

pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do
		kill "$p" 2>/dev/null || true
	done
	for p in "${pids[@]}"; do
		wait "$p" 2>/dev/null || true
	done
}
trap cleanup EXIT

# Link warnings glibc gives for NSS-backed functions in a static link, expected from the
# Debian archives we link, as "archive(member) symbol".  None of these paths is taken:
#   libcrypto bio_addr/bio_sock: OpenSSL's BIO_lookup and BIO_gethostbyname, pulled in by
#     libssl's DTLS code (d1_lib.o); libcurl hands OpenSSL a connected socket instead;
#   libcrypto dso_dlfcn: OpenSSL's loader for engines and provider modules, used only if
#     an openssl.cnf asks to load one;
#   libcares ares_getaddrinfo: named services ("http"); libcurl passes a numeric port with
#     ARES_AI_NUMERICSERV;
#   libcares ares_getnameinfo: reverse service lookups; libcurl never calls getnameinfo;
#   libsqlite3 os_unix: sqlite3_load_extension, never enabled.  The linker names only the
#     first archive that references a symbol, so this one shows when libcrypto is absent.
# libcurl itself references none of them (it resolves with c-ares): a new entry here,
# from libcurl or from acog-batch, is a regression, and the smoke test fails on it.
known_link_warnings=(
	"libcrypto.a(libcrypto-lib-dso_dlfcn.o) dlopen"
	"libcrypto.a(libcrypto-lib-bio_addr.o) getaddrinfo"
	"libcrypto.a(libcrypto-lib-bio_sock.o) gethostbyname"
	"libcares.a(libcares_la-ares_getaddrinfo.o) getservbyname"
	"libcares.a(libcares_la-ares_getnameinfo.o) getservbyport_r"
	"libsqlite3.a(os_unix.o) dlopen"
)

# check_link_warnings LOGFILE: lists the linker's warnings and fails on a static-NSS one
# that is not in known_link_warnings.
check_link_warnings() {
	local line where='?' sym k known bad=0
	while IFS= read -r line; do
		case $line in
		*" in function "*)
			where=${line% in function *} where=${where%:} where=${where##*/}
			;;
		*"in statically linked applications requires at runtime"*)
			sym=${line#*Using \'} sym=${sym%%\'*}
			known=0
			for k in "${known_link_warnings[@]}"; do
				[[ "$where $sym" == "$k" ]] && known=1
			done
			if ((known)); then
				log "    $where: $sym (known, never called)"
			else
				log "    $where: $sym (UNEXPECTED)"
				bad=1
			fi
			;;
		*warning*) log "    $line" ;;
		esac
	done <"$1"
	((!bad)) || die "a new NSS dependency in the static link (see $1)"
}

# start_server VAR NAME COMMAND...: runs a test server in the background, its output in
# $t/NAME.log, and sets VAR to the port it announced as "... port N".
start_server() {
	local _var=$1 _name=$2 _logf=$t/$2.log _i _port
	shift 2
	: >"$_logf" # exists before the server runs, so the loop below can read it at once
	"$@" >>"$_logf" 2>&1 &
	pids+=($!)
	for ((_i = 0; _i < 100; _i++)); do
		_port=$(sed -n 's/.* port \([0-9][0-9]*\).*/\1/p;T;q' "$_logf")
		if [[ -n $_port ]]; then
			printf -v "$_var" '%s' "$_port"
			return 0
		fi
		sleep 0.1
	done
	cat "$_logf" >&2
	die "$_name server did not start (log: $_logf)"
}

# run_smoke WHAT ARGS...: runs the smoke binary, indenting its report.
run_smoke() {
	local what=$1
	shift
	log "smoke test: $what"
	"$bin" "$@" 2>&1 | sed 's/^/    /' >&2 || die "smoke test failed: $what"
}

smoke_test() {
	local cflags libs cc=${CC:-cc} port sport dport name=acog-smoke.test
	bin=$out/smoke t=$out/smoke-test
	if ((!check)) && [[ -f $stamps/smoke && -x $bin ]] &&
	    [[ $stamps/smoke -nt $here/smoke.c && $stamps/smoke -nt $prefix/flags.mk ]] &&
	    [[ $stamps/smoke -nt ${BASH_SOURCE[0]} ]] &&
	    [[ $stamps/smoke -nt $prefix/lib/libcurl.a && $stamps/smoke -nt $prefix/lib/libcjson.a ]]; then
		return 0
	fi
	log "smoke test: linking $bin with -static"
	cflags=$(mk_var STATIC_CFLAGS)
	libs=$(mk_var STATIC_LIBS)
	# shellcheck disable=SC2086
	if ! "$cc" -O2 -Wall -Wextra $cflags -o "$bin" "$here/smoke.c" $libs \
	    >"$logs/smoke-link.log" 2>&1; then
		cat "$logs/smoke-link.log" >&2
		die "linking the smoke test failed"
	fi
	if [[ -s $logs/smoke-link.log ]]; then
		log "link warnings (full text in $logs/smoke-link.log):"
		check_link_warnings "$logs/smoke-link.log"
	fi
	[[ $(file -b "$bin") == *"statically linked"* ]] || die "$(file "$bin")"
	if ldd "$bin" >"$logs/smoke-ldd.log" 2>&1 ||
	    ! grep -q 'not a dynamic executable' "$logs/smoke-ldd.log"; then
		die "ldd does not call $bin static: $(cat "$logs/smoke-ldd.log")"
	fi
	log "smoke test: file: statically linked; ldd: not a dynamic executable;" \
		"$(stat -c %s "$bin") bytes"

	rm -rf "$t"
	mkdir -p "$t/www"
	printf '{"message": "hello from acog-batch smoke"}\n' >"$t/www/hello.json"
	run_logged "$logs/smoke-cert.log" openssl req -x509 -newkey rsa:2048 -nodes -days 2 \
		-subj /CN=localhost -addext "subjectAltName=DNS:localhost,DNS:$name,IP:127.0.0.1" \
		-keyout "$t/key.pem" -out "$t/cert.pem"

	start_server port http python3 -u -m http.server 0 --bind 127.0.0.1 --directory "$t/www"
	start_server sport https python3 -u -c '
import functools, http.server, ssl, sys
www, cert, key = sys.argv[1:4]
handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=www)
srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
print("Serving HTTPS on 127.0.0.1 port %d" % srv.server_address[1])
srv.serve_forever()
' "$t/www" "$t/cert.pem" "$t/key.pem"
	# A one-name DNS server: NAME is A 127.0.0.1, has no AAAA, every other name is NXDOMAIN.
	start_server dport dns python3 -u -c '
import socket, struct, sys
want = sys.argv[1].lower()
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
print("Serving DNS on 127.0.0.1 port %d" % s.getsockname()[1])
while True:
    q, peer = s.recvfrom(4096)
    if len(q) < 17 or struct.unpack(">H", q[4:6])[0] != 1:
        continue
    i, labels = 12, []
    while i < len(q) and q[i] != 0:
        labels.append(q[i + 1:i + 1 + q[i]].decode("ascii", "replace"))
        i += 1 + q[i]
    if i + 5 > len(q):
        continue
    qtype = struct.unpack(">H", q[i + 1:i + 3])[0]
    question, name = q[12:i + 5], ".".join(labels).lower()
    flags = 0x8080 | (struct.unpack(">H", q[2:4])[0] & 0x0100)
    answer = b""
    if name != want:
        flags |= 3
    else:
        flags |= 0x0400
        if qtype == 1:
            answer = struct.pack(">HHHIH", 0xC00C, 1, 1, 60, 4) + socket.inet_aton("127.0.0.1")
    s.sendto(q[0:2] + struct.pack(">HHHHH", flags, 1, 1 if answer else 0, 0, 0)
             + question + answer, peer)
    print("answered %s type %d with %d record(s)" % (name, qtype, 1 if answer else 0))
' "$name"

	run_smoke "plain HTTP to 127.0.0.1" "http://127.0.0.1:$port/hello.json" -
	# libcurl answers "localhost" itself (RFC 6761), without asking any resolver.
	run_smoke "HTTPS to localhost, self-signed CA" "https://localhost:$sport/hello.json" \
		"$t/cert.pem"
	# A name that only our DNS server knows: c-ares reads /etc/hosts, then asks it.
	run_smoke "HTTPS to $name, resolved by c-ares through 127.0.0.1:$dport" \
		"https://$name:$sport/hello.json" "$t/cert.pem" "127.0.0.1:$dport"
	grep -q "answered $name type 1 with 1" "$t/dns.log" || die "the DNS server was not asked"
	# The certificate must really be checked: without the CA the fetch has to fail.
	if "$bin" "https://localhost:$sport/hello.json" /dev/null >/dev/null 2>&1; then
		die "HTTPS fetch succeeded without the CA: certificates are not verified"
	fi
	log "smoke test: without the CA the HTTPS fetch fails, as it must"
	# glibc's NSS would show as libnss_*.so being opened: a static glibc binary dlopens its
	# modules.  (c-ares reads /etc/nsswitch.conf itself, for the order of files and dns.)
	if ! strace -f -qq -e trace=open,openat -o "$t/strace.log" "$bin" \
	    "https://$name:$sport/hello.json" "$t/cert.pem" "127.0.0.1:$dport" >/dev/null 2>&1; then
		log "smoke test: strace cannot trace here; NSS check skipped"
	elif grep -E 'libnss_|\.so(\.[0-9]+)*"' "$t/strace.log" >&2; then
		die "the smoke binary loaded shared objects"
	else
		log "smoke test: strace: no shared object opened; files read:" \
			"$(grep -v ENOENT "$t/strace.log" | grep -o '"/etc/[^"]*"' | sort -u | tr '\n' ' ')"
	fi
	cleanup
	pids=()
	log "smoke test passed"
	touch "$stamps/smoke"
}

# --- main --------------------------------------------------------------------------------

main() {
	local arg
	for arg in "$@"; do
		case $arg in
		--force) force=1 ;;
		--check) check=1 ;;
		--no-smoke) smoke=0 ;;
		-h | --help) usage; exit 0 ;;
		*) usage >&2; exit 64 ;;
		esac
	done
	mkdir -p "$src" "$work" "$prefix" "$stamps" "$logs"
	# One run at a time per build folder (make -j may start two).
	exec 9>"$out/.lock"
	flock 9
	ensure_packages
	fetch_source curl
	fetch_source cjson
	build_curl
	build_cjson
	write_flags
	((smoke)) && smoke_test
	log "ok: include $prefix/flags.mk"
}

main "$@"
