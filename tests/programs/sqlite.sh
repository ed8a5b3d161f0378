#!/usr/bin/env bash
# sqlite3: a table of 150k rows in a database file, indexes, aggregates,
# joins, window functions, a rolled-back transaction, VACUUM (workload.sql).
. "$(dirname "$0")/lib.sh"
prog_begin sqlite3
prog_need sqlite3
prog_both sqlite3 --stdin "$PROGRAMS_SRC/workload.sql" --min-mallocs 100000 -- sqlite3 -batch -bail test.db
prog_end
