#!/usr/bin/env bash
# install.sh BUILD_DIR SOURCE_DIR - what `ninja -C build install` puts on a
# machine, installed into a temporary DESTDIR: the library and its soname
# links, rtalloc.h, rtalloc.pc (no placeholder), rtalloc-stat, rtalloc(3) with
# a page for every public function, rtalloc-stat(1) -- and nothing of the
# tests or the benchmark.  Then a program built with `pkg-config --cflags
# --libs rtalloc` against that installation links and runs.
set -uo pipefail
build=${1:?usage: install.sh BUILD_DIR SOURCE_DIR}
src=${2:?usage: install.sh BUILD_DIR SOURCE_DIR}
dest=$(mktemp -d /tmp/rtalloc-install.XXXXXX)
trap 'rm -rf "$dest"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

meson install -C "$build" --destdir "$dest" --no-rebuild --quiet >"$dest.log" 2>&1 ||
	{ cat "$dest.log"; rm -f "$dest.log"; fail "meson install"; }
rm -f "$dest.log"
prefix=$(meson introspect "$build" --buildoptions | python3 -c \
	'import json,sys; print(next(o["value"] for o in json.load(sys.stdin) if o["name"]=="prefix"))')
libdir=$(meson introspect "$build" --buildoptions | python3 -c \
	'import json,sys; print(next(o["value"] for o in json.load(sys.stdin) if o["name"]=="libdir"))')
root=$dest$prefix
[[ $libdir = /* ]] || libdir=$prefix/$libdir
lib=$dest$libdir

for f in "$lib/librtalloc.so" "$lib/librtalloc.so.0" "$root/include/rtalloc.h" \
	"$lib/pkgconfig/rtalloc.pc" "$root/bin/rtalloc-stat" "$root/share/man/man3/rtalloc.3" \
	"$root/share/man/man1/rtalloc-stat.1"; do
	[ -e "$f" ] || fail "not installed: ${f#"$dest"}"
done
for fn in $(grep -oE '\brtalloc_[a-z0-9_]+[[:space:]]*\(' "$src/include/rtalloc.h" | tr -d '( \t' | sort -u); do
	[ -e "$root/share/man/man3/$fn.3" ] || fail "no man page installed for $fn"
	grep -q '^\.so man3/rtalloc\.3' "$root/share/man/man3/$fn.3" || fail "$fn.3 does not source rtalloc(3)"
done
grep -q 'example\.invalid\|^URL: *$' "$lib/pkgconfig/rtalloc.pc" && fail "rtalloc.pc has a placeholder URL"
extra=$(find "$dest" -type f \( -name 'test_*' -o -name 'st_*' -o -name 'rtbench' -o -name 'rtdemo' \
	-o -name 'librtrecipe*' -o -name 'librtmlock*' \) | sed "s|^$dest||")
[ -z "$extra" ] || fail "installed test or benchmark files: $extra"

cat >"$dest/prog.c" <<'C'
#include <rtalloc.h>
#include <stdio.h>
#include <stdlib.h>
int main(void)
{
	struct rtalloc_config cfg = {.size = sizeof(cfg), .pool_size = 1 << 20, .mlock = RTALLOC_MLOCK_OFF};
	if (rtalloc_init(&cfg) != 0)
		return 1;
	void *p = malloc(100);
	if (!p || rtalloc_check() != 0)
		return 2;
	free(p);
	printf("ok %u\n", rtalloc_version());
	return 0;
}
C
export PKG_CONFIG_PATH="$lib/pkgconfig" PKG_CONFIG_SYSROOT_DIR="$dest"
flags=$(pkg-config --cflags --libs rtalloc) || fail "pkg-config rtalloc"
cc -o "$dest/prog" "$dest/prog.c" $flags || fail "building a program with pkg-config --cflags --libs rtalloc ($flags)"
out=$(LD_LIBRARY_PATH="$lib" RTALLOC_STATS=0 "$dest/prog") || fail "the installed library did not run a program ($out)"
echo "installed: $(find "$dest" -type f | wc -l) files; a program built with pkg-config runs: $out"
