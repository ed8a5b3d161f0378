#!/usr/bin/env bash
# A C++ program built here (cxx_workload.cpp): containers, strings, streams,
# regex, exceptions, std::thread with cross-thread frees.  Usage: cxx.sh PROGRAM
. "$(dirname "$0")/lib.sh"
prog_begin cxx
prog_both cxx-workload --min-mallocs 1000000 -- "$(realpath "$1")"
prog_end
