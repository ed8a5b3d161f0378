#!/usr/bin/env bash
# run.sh TARGET CORPUS WORKDIR SECONDS - one bounded libFuzzer run (tests/fuzz).
#
# The seed corpus CORPUS (in the repository) is read, never written: new
# inputs go to WORKDIR/corpus, crashes to WORKDIR/ (their paths printed).
# Files named crash-* in CORPUS are reproducers of bugs found and not fixed
# yet: each is run alone first; one that still fails is reported as known
# (the run goes on), one that passes says the bug is gone.  Exit 0 when the
# run found nothing new.
set -uo pipefail
target=$1 corpus=$2 work=$3 seconds=$4
mkdir -p "$work/corpus" "$work/seeds"
rm -f "$work/seeds"/*
known=0
for f in "$corpus"/*; do
  [ -f "$f" ] || continue
  case $(basename "$f") in
    crash-*)
      if "$target" -runs=1 "$f" >"$work/known.log" 2>&1; then
        echo "run.sh: $(basename "$f") no longer fails: the bug is fixed (rename it to seed-*)"
      else
        known=$((known + 1))
        echo "run.sh: known bug, not fixed yet: $(basename "$f") still fails:"
        grep -m3 -E 'ERROR|runtime error|fuzz_[a-z]+:|rtalloc' "$work/known.log" | sed 's/^/    /'
      fi ;;
    *) cp "$f" "$work/seeds/" ;;
  esac
done
echo "run.sh: $(basename "$target") for ${seconds}s over $(ls "$work/seeds" | wc -l) seeds ($known known crashes left out)"
"$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=4096 \
  -print_final_stats=1 -artifact_prefix="$work/" "$work/corpus" "$work/seeds" 2>&1 | tail -25
rc=${PIPESTATUS[0]}
[ $rc -ne 0 ] && ls "$work"/crash-* "$work"/leak-* "$work"/timeout-* "$work"/oom-* 2>/dev/null | sed 's/^/run.sh: new finding: /'
exit $rc
