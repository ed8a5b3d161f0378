#!/usr/bin/env bash
# tests/docs/check_docs.sh SOURCE_DIR - the documentation matches the code:
#   - every public function of include/rtalloc.h has a man page (doc/meson.build's
#     list of pages that source rtalloc(3)) and is described in rtalloc(3);
#   - every RTALLOC_* variable the library reads is in README.md and rtalloc(3);
#   - every man page rtalloc(3) and rtalloc-stat(1) refer to exists.
# Prints what is missing; exit 1 if anything is.
set -uo pipefail
src=${1:?usage: check_docs.sh SOURCE_DIR}
cd "$src" || exit 2
bad=0
miss() { echo "MISSING: $*"; bad=1; }

funcs=$(grep -oE '\brtalloc_[a-z0-9_]+[[:space:]]*\(' include/rtalloc.h | tr -d '( \t' | sort -u)
[ -n "$funcs" ] || { echo "no functions found in include/rtalloc.h"; exit 2; }
for f in $funcs; do
  grep -q "'$f'" doc/meson.build || miss "$f: no man page (doc/meson.build man_links)"
  grep -qE "(^|[^a-z_])$f([^a-z_]|\$)" doc/rtalloc.3 || miss "$f: not described in doc/rtalloc.3"
done
for f in $(grep -oE "'rtalloc_[a-z0-9_]+'" doc/meson.build | tr -d "'"); do
  grep -qx "$f" <<<"$funcs" || miss "$f: a man page for a function rtalloc.h does not declare"
done

vars=$(grep -ohE '"RTALLOC_[A-Z0-9_]+"' lib/*.c lib/*.h | tr -d '"' | sort -u)
[ -n "$vars" ] || { echo "no RTALLOC_* variables found in lib/"; exit 2; }
for v in $vars; do
  grep -q "\`$v\`" README.md || miss "$v: read by lib/ but not in README.md"
  grep -q "$v" doc/rtalloc.3 || miss "$v: read by lib/ but not in doc/rtalloc.3"
done

pages=" rtalloc.3 rtalloc-stat.1 $(grep -oE "'rtalloc_[a-z0-9_]+'" doc/meson.build | tr -d "'" | sed 's/$/.3/' | tr '\n' ' ')"
for doc in doc/rtalloc.3 doc/rtalloc-stat.1; do
  for ref in $(grep -oE '\brtalloc[a-z0-9_-]*( |\\)?\([1-9]\)' "$doc" | tr -d '\\ ' | sort -u); do
    name=${ref%(*}; sec=${ref#*(}; sec=${sec%)}
    case "$pages" in *" $name.$sec "*) ;; *) miss "$doc refers to $ref, which no page provides" ;; esac
  done
done
[ $bad -eq 0 ] && echo "documentation matches: $(wc -w <<<"$funcs") functions, $(wc -w <<<"$vars") variables"
exit $bad
