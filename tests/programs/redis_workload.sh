#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# redis-server driven by redis-benchmark on loopback, for the drop-in's
# real-program test.  A bounded benchmark (it must succeed) is followed by
# a generated data set; the output is the data set's contents and digest,
# which depend only on the commands, never on the allocator.  The server
# listens on a random free port of 127.0.0.1 and is always killed at the
# end.  usage: redis_workload.sh WORKDIR
set -u
dir=$1
pid=
cleanup() {
	if [ -n "$pid" ]; then
		kill "$pid" 2>/dev/null
		sleep 0.2
		kill -9 "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM

start_server() {
	for try in 1 2 3 4 5 6 7 8; do
		port=$(awk -v s="$$" -v t="$try" 'BEGIN {
			srand(); print 20000 + (int(rand() * 30000) + s * 7 + t * 1009) % 40000 }')
		redis-server --port "$port" --bind 127.0.0.1 --save '' \
		    --appendonly no --dir "$dir" --daemonize no \
		    --enable-debug-command local --logfile "$dir/redis.log" &
		pid=$!
		for i in $(seq 1 50); do
			if [ "$(redis-cli -p "$port" ping 2>/dev/null)" = PONG ]; then
				return 0
			fi
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -9 "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
		pid=
	done
	echo "redis-server did not start" >&2
	return 1
}

start_server || exit 1
cli() { redis-cli -p "$port" "$@"; }

redis-benchmark -h 127.0.0.1 -p "$port" -n 20000 -c 8 -P 16 -q \
    -t set,get,incr,lpush,rpush,lpop,rpop,sadd,hset,spop,zadd,lrange_100 \
    >"$dir/benchmark.txt" 2>&1
echo "benchmark status $?"
awk 'BEGIN {
	for (i = 0; i < 20000; i++) {
		printf "SET k:%d %s\n", i, sprintf("%0" (i % 200 + 1) "d", i)
		printf "HSET h:%d f%d %d\n", i % 500, i, i * 7
		printf "ZADD z:%d %d m%d\n", i % 50, i % 997, i
		printf "RPUSH l:%d item-%d\n", i % 20, i
		if (i % 3 == 0)
			printf "DEL k:%d\n", i - 1
		if (i % 5 == 0)
			printf "APPEND k:%d %s\n", i, "tail"
	}
}' | cli --pipe >/dev/null
echo "dbsize $(cli DBSIZE)"
echo "counter $(cli GET counter:__rand_int__)"
echo "mylist $(cli LLEN mylist)"
echo "hash $(cli HLEN h:7) $(cli HGET h:7 f4507)"
echo "zset $(cli ZCARD z:3) $(cli ZRANGE z:3 0 4 WITHSCORES | tr '\n' ' ')"
echo "list $(cli LLEN l:5) $(cli LINDEX l:5 -1)"
echo "string $(cli STRLEN k:1000) $(cli GET k:10)"
echo "digest $(cli DEBUG DIGEST)"
cli SHUTDOWN NOSAVE >/dev/null 2>&1
wait "$pid"
echo "server status $?"
pid=
