#!/usr/bin/env bash
# sort (coreutils, 2 threads) over a generated file of a million lines: a
# whole-line sort in memory, and a keyed numeric sort with a small buffer that
# merges temporary files; each output's digest and ends are compared.
. "$(dirname "$0")/lib.sh"
prog_begin sort
prog_need sort awk sha256sum

# The input, made once (not timed) and linked into each run's directory.
awk 'BEGIN { x = 1; for (i = 0; i < 1000000; i++) {
		x = (x * 1103515245 + 12345) % 2147483648
		printf "%08x %d w%d %s\n", x, x % 100000, i % 977, substr("the quick brown fox jumps over", 1 + x % 20, 1 + x % 11) } }' >"$PROG_WORK/in.txt" || exit 1
link_input() { ln "$PROG_WORK/in.txt" in.txt; }

sort_job() {
	set -e
	mkdir -p tmp
	sort --parallel=2 in.txt >a.txt
	sort --parallel=2 -S 4M -T tmp -t ' ' -k2,2n -k3,3 -k1,1r in.txt >b.txt
	for f in a b; do
		sha256sum "$f.txt"
		wc -l <"$f.txt"
		head -2 "$f.txt"
		tail -2 "$f.txt"
	done
	sort -c a.txt && echo "a.txt is sorted"
}
export -f sort_job
prog_both sort --prep link_input --timeout 120 --min-mallocs 10 -- bash -c 'sort_job'
prog_end
