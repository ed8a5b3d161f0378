#!/usr/bin/env bash
# perl: hashes, strings, regexes, sort, references.
. "$(dirname "$0")/lib.sh"
prog_begin perl
prog_need perl
prog_both perl --min-mallocs 100000 -- perl "$PROGRAMS_SRC/workload.pl"
prog_end
