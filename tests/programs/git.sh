#!/usr/bin/env bash
# git: a repository of a few hundred files in a fresh directory: init, add,
# commit (several), log, diff, gc, repack, fsck.  Names and dates are fixed,
# so commit and tree hashes must be the same with librtalloc.
. "$(dirname "$0")/lib.sh"
prog_begin git
prog_need git awk

# The files: 400 in 20 directories, deterministic contents, made once (not
# timed) and copied into each run's directory.
(cd "$PROG_WORK" && awk 'BEGIN {
		x = 7
		for (d = 0; d < 20; d++) {
			system("mkdir -p src/d" d)
			for (f = 0; f < 20; f++) {
				p = sprintf("src/d%d/f%02d.txt", d, f)
				n = 20 + (d * 20 + f) % 80
				for (l = 0; l < n; l++) {
					x = (x * 1103515245 + 12345) % 2147483648
					printf "line %d of %s: %08x %s\n", l, p, x, (x % 3 ? "lorem ipsum dolor" : "sit amet") > p
				}
				close(p)
			}
		}
	}') || exit 1
copy_files() { cp -r "$PROG_WORK/src" .; }

# The workload, one bash script run under LD_PRELOAD (bash and every git
# process it starts, with gc's children, get librtalloc).
git_job() {
	set -e
	g() { git -c init.defaultBranch=main -c gc.autoDetach=false -c pack.threads=2 "$@"; }
	export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null HOME=$PWD
	export GIT_AUTHOR_NAME=Tester GIT_AUTHOR_EMAIL=tester@example.invalid
	export GIT_COMMITTER_NAME=Tester GIT_COMMITTER_EMAIL=tester@example.invalid
	g init -q repo
	cd repo
	mv ../src .
	for i in 1 2 3 4 5 6; do
		export GIT_AUTHOR_DATE="2024-01-0$i 12:00:00 +0000" GIT_COMMITTER_DATE="2024-01-0$i 12:00:00 +0000"
		if [ "$i" -gt 1 ]; then
			# change every $i-th file, add a few, remove one
			n=0
			for f in src/d*/f*.txt; do
				n=$((n + 1))
				[ $((n % i)) -eq 0 ] && printf 'round %d changed %s\n' "$i" "$f" >>"$f"
			done
			mkdir -p "src/new$i"
			for k in 1 2 3 4 5; do seq "$((k * i * 100))" >"src/new$i/n$k.txt"; done
			g rm -q "src/d$i/f0$i.txt"
			g checkout -q -b "topic$i"
			g checkout -q main
		fi
		g add -A
		g commit -q -m "commit $i" -m "$(printf 'body line %d\n' 1 2 3)"
	done
	g tag -a -m "release" v1.0
	echo "== log"
	g log --format=%H%n%T
	echo "== stat"
	g diff --stat HEAD~5 HEAD | tail -1
	g log --oneline --name-status -3 | md5sum
	echo "== tree"
	g ls-tree -r HEAD | wc -l
	g grep -c 'sit amet' HEAD -- src/d3 | head -5
	g rev-list --all --objects | wc -l
	echo "== gc"
	g gc -q --prune=now
	g repack -q -a -d -f --depth=20 --window=20
	g count-objects -v | grep -E '^(count|in-pack|packs|garbage):'
	g fsck --full --strict --no-progress && echo "fsck: clean"
	g verify-pack -v .git/objects/pack/*.idx | grep -cE '^[0-9a-f]{40} (commit|tree|blob|tag) '
	g log --format=%H%n%T | md5sum
	g branch --list | wc -l
	g archive --format=tar HEAD | tar -t | wc -l
}
export -f git_job
prog_both git --prep copy_files --timeout 120 --min-mallocs 100 -- bash -c 'git_job'
prog_end
