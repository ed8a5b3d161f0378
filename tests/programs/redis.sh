#!/usr/bin/env bash
# redis-server on 127.0.0.1 (a random free high port), driven by
# redis-benchmark (-n 20000, set/get/lpush/lpop) and redis-cli (a pipe of
# 20000 commands, then queries whose replies are compared).  With librtalloc,
# the server and every client run under LD_PRELOAD.  The server is shut down
# at the end, and killed on any failure or timeout.
. "$(dirname "$0")/lib.sh"
prog_begin redis
prog_need redis-server redis-cli redis-benchmark

redis_job() {
	set -u
	local port up=0 i
	spid='' # global: the EXIT trap runs after the function returned
	trap 'if [ -n "$spid" ]; then kill -9 "$spid" 2>/dev/null; fi' EXIT
	for _ in 1 2 3 4 5; do # attempts
		port=$((20000 + RANDOM % 40000))
		# A port in use is skipped (and a server that cannot bind exits).
		command -v ss >/dev/null && ss -Htln "sport = :$port" | grep -q . && continue
		redis-server --port "$port" --bind 127.0.0.1 --protected-mode yes --save '' --appendonly no \
			--dir "$PWD" --logfile "$PWD/server.log" --daemonize no --databases 2 &
		spid=$!
		for i in $(seq 100); do # 10 s
			kill -0 "$spid" 2>/dev/null || break
			# Our server, not another one on the same port.
			if redis-cli -p "$port" info server 2>/dev/null | tr -d '\r' | grep -qx "process_id:$spid"; then
				up=1
				break
			fi
			sleep 0.1
		done
		[ "$up" -eq 1 ] && break
		kill -9 "$spid" 2>/dev/null
		wait "$spid" 2>/dev/null
		spid=''
	done
	if [ "$up" -ne 1 ]; then
		echo "redis-server did not start" >&2
		tail -5 server.log >&2
		return 1
	fi
	echo "$spid" >"$PROG_MAINPID_FILE"
	cli() { redis-cli -p "$port" "$@"; }

	echo "== benchmark"
	redis-benchmark -h 127.0.0.1 -p "$port" -n 20000 -c 20 -q -t set,get,lpush,lpop >bench.out || return 1
	tr '\r' '\n' <bench.out | grep 'requests per second' | sed -E 's/:.*/: done/'
	echo "== pipe"
	for i in $(seq 1 5000); do
		printf 'SET k:%d value-%d-%0*d\r\n' "$i" "$i" $((i % 300)) 0
		printf 'RPUSH list:%d %d %d %d\r\n' $((i % 50)) "$i" $((i * 2)) $((i * 3))
		printf 'HSET h:%d f%d %d\r\n' $((i % 100)) "$i" "$i"
		printf 'ZADD z %d m%d\r\n' $(((i * 7919) % 10007)) "$i"
	done | cli --pipe >pipe.out 2>&1
	# Its summary, without librtalloc's own notices (a pool growth, on stderr).
	grep -v '^rtalloc: ' pipe.out
	echo "== queries"
	cli dbsize
	cli get k:4321
	cli lrange list:7 0 9
	cli llen list:49
	cli hlen h:42
	cli hget h:42 f4242
	cli zcard z
	cli zrange z 0 4 withscores
	cli zrangebyscore z 5000 5010
	cli incrby counter 41
	cli incr counter
	cli append k:1 "-appended"
	cli get k:1
	cli setrange big 1000000 x
	cli strlen big
	cli sort list:3 limit 0 5
	cli object encoding h:1
	cli eval 'local t = {} for i = 1, 20000 do t[i] = tostring(i) .. "-" .. i end return #t .. " " .. t[12345]' 0
	cli eval 'for i = 1, 2000 do redis.call("SADD", "s", "m" .. (i % 700)) end return redis.call("SCARD", "s")' 0
	cli del list:1 list:2 list:3 z big
	cli flushdb
	cli dbsize
	cli -n 1 set other 1
	cli -n 1 dbsize
	cli lastsave >/dev/null
	echo "== shutdown"
	cli shutdown nosave | grep -v '^$' || true
	for i in $(seq 100); do # 10 s
		kill -0 "$spid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$spid" 2>/dev/null; then
		echo "redis-server did not stop within 10 s" >&2
		return 1
	fi
	wait "$spid"
	echo "server exit status $?"
	spid=''
}
export -f redis_job
prog_both redis --timeout 120 --min-mallocs 10000 -- bash -c 'redis_job'
prog_end
