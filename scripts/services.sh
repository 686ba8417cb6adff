#!/usr/bin/env bash
# services.sh — start, on loopback, the real servers scaleout's integration tests use.
#
# Usage: scripts/services.sh up|down|env|status
#
#   up      start what is missing (idempotent; a second run is a fast no-op), write the
#           environment to $ROOT/env and print it, so `eval "$(scripts/services.sh up)"`
#           also works (progress goes to stderr).
#   down    stop only what this script started (by its recorded pids; PostgreSQL with
#           pg_ctl stop -m fast on its own data dirs) and remove its state. Servers that
#           were merely reused are never touched.
#   env     print `export SCALEOUT_...=...` lines for the services that answer right now:
#             eval "$(scripts/services.sh env)"
#   status  human-readable state of every service.
#
# Services and where they live (all state — pid files, data dirs, logs — under $ROOT):
#   Redis            reuse 127.0.0.1:6379 if it answers PING, else our own on 6390
#   Redis Cluster    6 nodes on 127.0.0.1:7001-7006, 3 masters + 3 replicas
#   Redis Sentinel   master group "scaleout": a master on 127.0.0.1:6391, its replica on 6392,
#                    three sentinels (redis-server --sentinel) on 26391-26393, quorum 2;
#                    ports of its own, so a Redis or a redis-sentinel on 6379/26379 is never
#                    touched. Tests never fail this group over (they start private ones).
#   Memcached        reuse 127.0.0.1:11211 if it answers `version`, else our own on 11311
#   PostgreSQL       primary on 127.0.0.1:5433, streaming standby on 127.0.0.1:5434
#   MariaDB          primary on 127.0.0.1:3307, replica on 127.0.0.1:3308 (GTID
#                    replication, read_only=1); a MariaDB/MySQL on 3306 is never touched
#   Chromium         not a server: `up` only makes sure /usr/bin/chromium is installed,
#                    for the browser tests (browsertest/ starts one per test with chromedp);
#                    `env` exports its path, and `down` has nothing to stop
#
# Missing programs are installed with apt-get when run as root (redis-server, memcached,
# postgresql, mariadb-server, chromium); otherwise the script names the packages to install and exits
# non-zero.
#
# Knobs (environment variables; defaults in brackets):
#   SCALEOUT_SERVICES_DIR          root of all state [/tmp/scaleout-services]
#   SCALEOUT_SERVICES              which services `up` handles [redis cluster sentinel memcached pg mariadb chromium]
#   SCALEOUT_REDIS_REUSE_PORT      port of a Redis to reuse [6379]
#   SCALEOUT_REDIS_PORT            port of our own Redis [6390]
#   SCALEOUT_REDIS_CLUSTER_PORT    first cluster port; nodes use it and the next 5 [7001]
#   SCALEOUT_REDIS_SENTINEL_DATA_PORT  the Sentinel group's first Redis; its replica the next [6391]
#   SCALEOUT_REDIS_SENTINEL_PORT   first sentinel port; sentinels use it and the next 2 [26391]
#   SCALEOUT_MEMCACHED_REUSE_PORT  port of a memcached to reuse [11211]
#   SCALEOUT_MEMCACHED_PORT        port of our own memcached [11311]
#   SCALEOUT_PG_PRIMARY_PORT       [5433]
#   SCALEOUT_PG_REPLICA_PORT       [5434]
#   SCALEOUT_MYSQL_PRIMARY_PORT    [3307]
#   SCALEOUT_MYSQL_REPLICA_PORT    [3308]
#   SCALEOUT_NO_INSTALL=1          never run apt-get; report missing packages instead
#
# To exercise the "no Redis on 6379" path on a machine that has one:
#   SCALEOUT_REDIS_REUSE_PORT=6399 scripts/services.sh up
set -euo pipefail

ROOT="${SCALEOUT_SERVICES_DIR:-/tmp/scaleout-services}"
SERVICES="${SCALEOUT_SERVICES:-redis cluster sentinel memcached pg mariadb chromium}"
HOST=127.0.0.1
REDIS_REUSE_PORT="${SCALEOUT_REDIS_REUSE_PORT:-6379}"
REDIS_PORT="${SCALEOUT_REDIS_PORT:-6390}"
CLUSTER_PORT="${SCALEOUT_REDIS_CLUSTER_PORT:-7001}"
MEMCACHED_REUSE_PORT="${SCALEOUT_MEMCACHED_REUSE_PORT:-11211}"
MEMCACHED_PORT="${SCALEOUT_MEMCACHED_PORT:-11311}"
PG_PRIMARY_PORT="${SCALEOUT_PG_PRIMARY_PORT:-5433}"
PG_REPLICA_PORT="${SCALEOUT_PG_REPLICA_PORT:-5434}"
MYSQL_PRIMARY_PORT="${SCALEOUT_MYSQL_PRIMARY_PORT:-3307}"
MYSQL_REPLICA_PORT="${SCALEOUT_MYSQL_REPLICA_PORT:-3308}"
CLUSTER_PORTS=()
for i in 0 1 2 3 4 5; do CLUSTER_PORTS+=($((CLUSTER_PORT + i))); done
SENTINEL_DATA_PORT="${SCALEOUT_REDIS_SENTINEL_DATA_PORT:-6391}"
SENTINEL_PORT="${SCALEOUT_REDIS_SENTINEL_PORT:-26391}"
SENTINEL_MASTER=scaleout
SENTINEL_DATA_PORTS=("$SENTINEL_DATA_PORT" $((SENTINEL_DATA_PORT + 1)))
SENTINEL_PORTS=()
for i in 0 1 2; do SENTINEL_PORTS+=($((SENTINEL_PORT + i))); done

log() { printf 'services: %s\n' "$*" >&2; }
die() { printf 'services: error: %s\n' "$*" >&2; exit 1; }
wants() { [[ " $SERVICES " == *" $1 "* ]]; }
is_root() { [[ $EUID -eq 0 ]]; }

# ---------------------------------------------------------------- small network probes

# tcp_ask PORT PAYLOAD: send PAYLOAD to 127.0.0.1:PORT and print the first reply line
# (without CR). Fails when nothing listens or nothing answers within 2 seconds.
tcp_ask() {
	timeout 2 bash -c '
		exec 3<>"/dev/tcp/'"$HOST"'/$1" || exit 1
		printf "%b" "$2" >&3
		IFS= read -r line <&3 || exit 1
		printf "%s\n" "${line%$'"'"'\r'"'"'}"
	' _ "$1" "$2" 2>/dev/null
}

port_open() { timeout 1 bash -c 'exec 3<>"/dev/tcp/'"$HOST"'/$1"' _ "$1" 2>/dev/null; }
redis_ping() { [[ "$(tcp_ask "$1" 'PING\r\n' || true)" == "+PONG" ]]; }
memcached_ping() { [[ "$(tcp_ask "$1" 'version\r\n' || true)" == VERSION* ]]; }

# running PID: the process exists and is not a zombie (a daemon whose parent died may
# be left unreaped, and kill -0 succeeds on zombies).
running() {
	local st
	st=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null) || return 1
	[[ -n $st && ${st%% *} != Z ]]
}

# pid_alive PIDFILE NAME: the pid in PIDFILE is a live process whose command line
# contains NAME (so a stale pid file whose pid was reused by something else is not ours).
pid_alive() {
	local pidfile=$1 name=$2 pid
	[[ -s $pidfile ]] || return 1
	pid=$(tr -dc '0-9' <"$pidfile")
	[[ -n $pid ]] && running "$pid" || return 1
	tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$name"
}

# stop_pid PIDFILE NAME: SIGTERM the recorded process, SIGKILL after 10s, remove the file.
stop_pid() {
	local pidfile=$1 name=$2 pid i
	if pid_alive "$pidfile" "$name"; then
		pid=$(tr -dc '0-9' <"$pidfile")
		kill -TERM "$pid" 2>/dev/null || true
		for ((i = 0; i < 100; i++)); do
			running "$pid" || break
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null || true
		for ((i = 0; i < 50; i++)); do
			running "$pid" || break
			sleep 0.1
		done
	fi
	rm -f "$pidfile"
}

# wait_until SECONDS DESCRIPTION COMMAND...: poll COMMAND every 0.1s.
wait_until() {
	local secs=$1 what=$2 i
	shift 2
	for ((i = 0; i < secs * 10; i++)); do
		"$@" && return 0
		sleep 0.1
	done
	die "timed out after ${secs}s waiting for $what"
}

# ---------------------------------------------------------------- programs and packages

PG_BIN=""
find_pg_bin() {
	local d
	PG_BIN=""
	for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r) \
		"$(pg_config --bindir 2>/dev/null || true)" \
		"$(dirname "$(command -v initdb 2>/dev/null || echo /nonexistent/x)")"; do
		if [[ -n $d && -x $d/initdb && -x $d/pg_ctl && -x $d/pg_basebackup && -x $d/postgres && -x $d/psql ]]; then
			PG_BIN=$d
			return 0
		fi
	done
	return 1
}

# find_mysql_bin: set MYSQL_INSTALL_DB, MYSQLD and MYSQL_CLIENT to the MariaDB programs
# (the mariadb-* names since 10.4, the mysql* ones before; mariadbd lives in /usr/sbin,
# which a non-root $PATH often lacks).
MYSQL_INSTALL_DB="" MYSQLD="" MYSQL_CLIENT=""
find_mysql_bin() {
	local path=$PATH:/usr/sbin:/usr/local/sbin:/sbin
	MYSQL_INSTALL_DB=$(PATH=$path command -v mariadb-install-db || PATH=$path command -v mysql_install_db) || return 1
	MYSQLD=$(PATH=$path command -v mariadbd || PATH=$path command -v mysqld) || return 1
	MYSQL_CLIENT=$(PATH=$path command -v mariadb || PATH=$path command -v mysql) || return 1
}

# chromium_bin: print the path of the Chromium binary (Debian's package chromium installs
# /usr/bin/chromium; Ubuntu calls it chromium-browser).
chromium_bin() { command -v chromium || command -v chromium-browser; }

# ensure_programs: install (as root) or name the packages for everything `up` needs.
ensure_programs() {
	local pkgs=()
	if wants redis || wants cluster || wants sentinel; then
		command -v redis-server >/dev/null && command -v redis-cli >/dev/null || pkgs+=(redis-server)
	fi
	if wants memcached; then
		command -v memcached >/dev/null || pkgs+=(memcached)
	fi
	if wants pg; then
		find_pg_bin || pkgs+=(postgresql)
	fi
	if wants mariadb; then
		find_mysql_bin || pkgs+=(mariadb-server)
	fi
	if wants chromium; then
		chromium_bin >/dev/null || pkgs+=(chromium)
	fi
	((${#pkgs[@]} == 0)) && return 0
	if ! is_root || [[ ${SCALEOUT_NO_INSTALL:-} == 1 ]]; then
		printf 'services: missing programs; install these Debian/Ubuntu packages:\n' >&2
		printf '    sudo apt-get install -y %s\n' "${pkgs[*]}" >&2
		exit 1
	fi
	log "installing ${pkgs[*]} with apt-get"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq </dev/null >"$ROOT/apt.log" 2>&1 || {
		cat "$ROOT/apt.log" >&2
		die "apt-get update failed"
	}
	apt-get install -y -qq -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
		"${pkgs[@]}" </dev/null >>"$ROOT/apt.log" 2>&1 || {
		tail -n 50 "$ROOT/apt.log" >&2
		die "apt-get install ${pkgs[*]} failed (full log: $ROOT/apt.log)"
	}
	hash -r
	if wants pg; then find_pg_bin || die "postgresql installed but initdb/pg_ctl not found"; fi
	if wants mariadb; then find_mysql_bin || die "mariadb-server installed but mariadb-install-db/mariadbd/mariadb not found"; fi
	if wants chromium; then chromium_bin >/dev/null || die "chromium installed but not found in \$PATH"; fi
}

# ---------------------------------------------------------------- Redis

redis_addr() {
	if redis_ping "$REDIS_REUSE_PORT"; then
		echo "$HOST:$REDIS_REUSE_PORT"
	elif redis_ping "$REDIS_PORT"; then
		echo "$HOST:$REDIS_PORT"
	else
		return 1
	fi
}

up_redis() {
	local dir=$ROOT/redis
	if redis_ping "$REDIS_REUSE_PORT"; then
		log "redis: reusing $HOST:$REDIS_REUSE_PORT"
		return 0
	fi
	if redis_ping "$REDIS_PORT"; then
		log "redis: already up on $HOST:$REDIS_PORT"
		return 0
	fi
	stop_pid "$dir/redis.pid" redis-server # stale pid file or hung process
	port_open "$REDIS_PORT" && die "port $REDIS_PORT is taken by something that is not Redis"
	mkdir -p "$dir"
	log "redis: starting our own on $HOST:$REDIS_PORT"
	redis-server --bind "$HOST" --port "$REDIS_PORT" --daemonize yes \
		--pidfile "$dir/redis.pid" --logfile "$dir/redis.log" --dir "$dir" \
		--save "" --appendonly no 9>&-
	wait_until 15 "redis on $REDIS_PORT" redis_ping "$REDIS_PORT"
}

down_redis() {
	if [[ -e $ROOT/redis/redis.pid ]]; then
		log "redis: stopping ours on $REDIS_PORT"
		stop_pid "$ROOT/redis/redis.pid" redis-server
	fi
	rm -rf "$ROOT/redis"
}

# ---------------------------------------------------------------- Redis Cluster

cluster_node_ok() {
	local info
	info=$(timeout 3 redis-cli -h "$HOST" -p "$1" cluster info 2>/dev/null | tr -d '\r') || return 1
	grep -qx 'cluster_state:ok' <<<"$info" &&
		grep -qx 'cluster_slots_ok:16384' <<<"$info" &&
		grep -qx 'cluster_known_nodes:6' <<<"$info"
}

cluster_ok() {
	local p
	command -v redis-cli >/dev/null || return 1
	for p in "${CLUSTER_PORTS[@]}"; do cluster_node_ok "$p" || return 1; done
}

up_cluster() {
	local p dir addrs=() i
	if cluster_ok; then
		log "redis cluster: already up and ok on ports ${CLUSTER_PORTS[0]}-${CLUSTER_PORTS[5]}"
		return 0
	fi
	# Anything partial (crashed nodes, a half-made cluster, stale pid files and
	# nodes.conf) is thrown away and built again: it takes a few seconds.
	for p in "${CLUSTER_PORTS[@]}"; do
		stop_pid "$ROOT/cluster/$p/redis.pid" redis-server
		port_open "$p" && die "port $p is taken by something this script did not start; stop it or set SCALEOUT_REDIS_CLUSTER_PORT"
	done
	rm -rf "$ROOT/cluster"
	log "redis cluster: starting 6 nodes on ports ${CLUSTER_PORTS[0]}-${CLUSTER_PORTS[5]}"
	for p in "${CLUSTER_PORTS[@]}"; do
		dir=$ROOT/cluster/$p
		mkdir -p "$dir"
		redis-server --bind "$HOST" --port "$p" --daemonize yes \
			--pidfile "$dir/redis.pid" --logfile "$dir/redis.log" --dir "$dir" \
			--cluster-enabled yes --cluster-config-file "$dir/nodes.conf" \
			--cluster-node-timeout 5000 --save "" --appendonly no 9>&-
		addrs+=("$HOST:$p")
	done
	for p in "${CLUSTER_PORTS[@]}"; do wait_until 15 "cluster node $p" redis_ping "$p"; done
	redis-cli --cluster create "${addrs[@]}" --cluster-replicas 1 --cluster-yes \
		</dev/null >"$ROOT/cluster/create.log" 2>&1 || {
		cat "$ROOT/cluster/create.log" >&2
		die "redis-cli --cluster create failed"
	}
	wait_until 60 "cluster_state:ok with 16384 slots on all nodes" cluster_ok
	# Wait until every replica has finished its first sync with its master.
	for ((i = 0; i < 300; i++)); do
		[[ $(for p in "${CLUSTER_PORTS[@]}"; do timeout 3 redis-cli -h "$HOST" -p "$p" info replication; done |
			tr -d '\r' | grep -c '^master_link_status:up$') -eq 3 ]] && break
		sleep 0.1
	done
	log "redis cluster: ok"
}

down_cluster() {
	local p
	for p in "${CLUSTER_PORTS[@]}"; do
		if [[ -e $ROOT/cluster/$p/redis.pid ]]; then
			stop_pid "$ROOT/cluster/$p/redis.pid" redis-server
		fi
	done
	[[ -d $ROOT/cluster ]] && log "redis cluster: stopped ours"
	rm -rf "$ROOT/cluster"
}

# ---------------------------------------------------------------- Redis Sentinel

# One master group, "scaleout": a master and a replica (plain redis-server) watched by
# three sentinels (redis-server --sentinel, the same Debian package) with quorum 2. The
# group only serves; no test fails it over (a failover here would make every other
# package's tests on it see the switch): failover tests start private groups of their
# own (internal/testenv StartSentinelGroup). Whichever node is master now (an operator
# may have failed it over) is fine: clients ask the sentinels.

# sentinel_cli PORT ARGS...: redis-cli against a sentinel or a node of the group.
sentinel_cli() { timeout 3 redis-cli -h "$HOST" -p "$@" 2>/dev/null | tr -d '\r'; }

# sentinel_ok: all three sentinels answer, name the same master, know each other (2
# other sentinels each) and see it up, and that master is a master with one replica
# whose link is up.
SENTINEL_ADDR_RE=' ip ([^ ]+) port ([0-9]+) '
sentinel_ok() {
	local p addr="" a info
	command -v redis-cli >/dev/null || return 1
	for p in "${SENTINEL_PORTS[@]}"; do
		# One call per sentinel (redis-cli costs ~0.1 s on a busy machine): SENTINEL
		# MASTER answers field/value lines, joined here into " k v k v ".
		info=" $(sentinel_cli "$p" sentinel master "$SENTINEL_MASTER" | paste -sd' ' -) " || return 1
		[[ $info =~ $SENTINEL_ADDR_RE ]] || return 1
		a=${BASH_REMATCH[1]}:${BASH_REMATCH[2]}
		[[ -z $addr || $a == "$addr" ]] || return 1
		addr=$a
		[[ $info == *" num-other-sentinels 2 "* && $info == *" flags master "* ]] || return 1
	done
	info=$(sentinel_cli "${addr##*:}" info replication) || return 1
	grep -qx 'role:master' <<<"$info" && grep -qx 'connected_slaves:1' <<<"$info" &&
		grep -q '^slave0:.*state=online' <<<"$info"
}

up_sentinel() {
	local dir=$ROOT/sentinel p i
	if sentinel_ok; then
		log "redis sentinel: already up and ok (data ${SENTINEL_DATA_PORTS[*]}, sentinels ${SENTINEL_PORTS[*]})"
		return 0
	fi
	# Anything partial is thrown away and built again: it takes about 3 seconds.
	for p in "${SENTINEL_PORTS[@]}" "${SENTINEL_DATA_PORTS[@]}"; do
		stop_pid "$dir/$p/redis.pid" redis-server
		port_open "$p" && die "port $p is taken by something this script did not start; stop it or set SCALEOUT_REDIS_SENTINEL_DATA_PORT / SCALEOUT_REDIS_SENTINEL_PORT"
	done
	rm -rf "$dir"
	log "redis sentinel: master $HOST:${SENTINEL_DATA_PORTS[0]}, replica ${SENTINEL_DATA_PORTS[1]}, sentinels ${SENTINEL_PORTS[*]}"
	for i in 0 1; do
		p=${SENTINEL_DATA_PORTS[$i]}
		mkdir -p "$dir/$p"
		local of=()
		((i == 1)) && of=(--replicaof "$HOST" "${SENTINEL_DATA_PORTS[0]}")
		redis-server --bind "$HOST" --port "$p" --daemonize yes \
			--pidfile "$dir/$p/redis.pid" --logfile "$dir/$p/redis.log" --dir "$dir/$p" \
			--save "" --appendonly no --repl-diskless-sync-delay 0 "${of[@]}" 9>&-
	done
	for p in "${SENTINEL_DATA_PORTS[@]}"; do wait_until 15 "sentinel group redis on $p" redis_ping "$p"; done
	for p in "${SENTINEL_PORTS[@]}"; do
		mkdir -p "$dir/$p"
		# A sentinel rewrites its config file (what it learns of the group), so
		# each has its own, made fresh here.
		cat >"$dir/$p/sentinel.conf" <<-EOF
			bind $HOST
			port $p
			daemonize yes
			pidfile $dir/$p/redis.pid
			logfile $dir/$p/sentinel.log
			dir $dir/$p
			sentinel monitor $SENTINEL_MASTER $HOST ${SENTINEL_DATA_PORTS[0]} 2
			sentinel down-after-milliseconds $SENTINEL_MASTER 5000
			sentinel failover-timeout $SENTINEL_MASTER 15000
			sentinel parallel-syncs $SENTINEL_MASTER 1
		EOF
		redis-server "$dir/$p/sentinel.conf" --sentinel 9>&-
	done
	for p in "${SENTINEL_PORTS[@]}"; do wait_until 15 "sentinel on $p" redis_ping "$p"; done
	# Sentinels find each other through hello messages every 2 s on the master.
	wait_until 30 "the sentinels to agree on the master and know each other, and the replica to sync" sentinel_ok
	log "redis sentinel: ok"
}

down_sentinel() {
	local p
	for p in "${SENTINEL_PORTS[@]}" "${SENTINEL_DATA_PORTS[@]}"; do
		if [[ -e $ROOT/sentinel/$p/redis.pid ]]; then
			stop_pid "$ROOT/sentinel/$p/redis.pid" redis-server
		fi
	done
	[[ -d $ROOT/sentinel ]] && log "redis sentinel: stopped ours"
	rm -rf "$ROOT/sentinel"
}

# ---------------------------------------------------------------- Memcached

memcached_addr() {
	if memcached_ping "$MEMCACHED_REUSE_PORT"; then
		echo "$HOST:$MEMCACHED_REUSE_PORT"
	elif memcached_ping "$MEMCACHED_PORT"; then
		echo "$HOST:$MEMCACHED_PORT"
	else
		return 1
	fi
}

up_memcached() {
	local dir=$ROOT/memcached user=()
	if memcached_ping "$MEMCACHED_REUSE_PORT"; then
		log "memcached: reusing $HOST:$MEMCACHED_REUSE_PORT"
		return 0
	fi
	if memcached_ping "$MEMCACHED_PORT"; then
		log "memcached: already up on $HOST:$MEMCACHED_PORT"
		return 0
	fi
	stop_pid "$dir/memcached.pid" memcached
	port_open "$MEMCACHED_PORT" && die "port $MEMCACHED_PORT is taken by something that is not memcached"
	mkdir -p "$dir"
	is_root && user=(-u root)
	log "memcached: starting our own on $HOST:$MEMCACHED_PORT"
	memcached -d -l "$HOST" -p "$MEMCACHED_PORT" -U 0 -m 64 -P "$dir/memcached.pid" "${user[@]}" \
		>>"$dir/memcached.log" 2>&1 9>&-
	wait_until 15 "memcached on $MEMCACHED_PORT" memcached_ping "$MEMCACHED_PORT"
}

down_memcached() {
	if [[ -e $ROOT/memcached/memcached.pid ]]; then
		log "memcached: stopping ours on $MEMCACHED_PORT"
		stop_pid "$ROOT/memcached/memcached.pid" memcached
	fi
	rm -rf "$ROOT/memcached"
}

# ---------------------------------------------------------------- PostgreSQL

# as_pg CMD...: run as the postgres OS user when we are root (initdb and postgres refuse
# to run as root), else as ourselves.
as_pg() {
	if is_root; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

pg_query() { # PORT SQL
	[[ -n $PG_BIN ]] || find_pg_bin || return 1
	timeout 5 "$PG_BIN/psql" -X -q -At -h "$HOST" -p "$1" -U postgres -d postgres -c "$2" 2>/dev/null
}

pg_ok() {
	[[ $(pg_query "$PG_PRIMARY_PORT" "select not pg_is_in_recovery() and exists (select from pg_stat_replication where state = 'streaming')" || true) == t ]] &&
		[[ $(pg_query "$PG_REPLICA_PORT" "select pg_is_in_recovery() and exists (select from pg_stat_wal_receiver where status = 'streaming')" || true) == t ]]
}

pg_running() { as_pg "$PG_BIN/pg_ctl" -D "$1" status >/dev/null 2>&1; }

pg_stop() { # DATADIR
	if [[ -f $1/PG_VERSION ]] && [[ -n $PG_BIN ]] && pg_running "$1"; then
		as_pg "$PG_BIN/pg_ctl" -D "$1" -m fast -w -t 60 stop >/dev/null || true
	fi
}

pg_start() { # DATADIR LOG
	if ! pg_running "$1"; then
		# 9>&-: the server must not inherit (and so hold) our lock.
		as_pg "$PG_BIN/pg_ctl" -D "$1" -l "$2" -w -t 60 start >/dev/null 9>&- ||
			{ tail -n 30 "$2" >&2; die "could not start PostgreSQL in $1 (log: $2)"; }
	fi
}

up_pg() {
	local dir=$ROOT/pg primary=$ROOT/pg/primary replica=$ROOT/pg/replica
	find_pg_bin || die "PostgreSQL binaries not found"
	if pg_ok; then
		log "postgres: primary $PG_PRIMARY_PORT and standby $PG_REPLICA_PORT already streaming"
		return 0
	fi
	if is_root && ! id -u postgres >/dev/null 2>&1; then
		log "postgres: creating the postgres OS user"
		useradd -r -U -M -d "$dir" -s /bin/bash postgres
	fi
	mkdir -p "$dir/run"
	if is_root; then
		chown postgres: "$dir" "$dir/run"
		runuser -u postgres -- test -x "$dir/run" ||
			die "the postgres user cannot reach $dir; set SCALEOUT_SERVICES_DIR to a path it can traverse"
	fi

	# Primary: a data dir without our marker is half-made; build it again (and with it
	# the standby, which must be cloned from this primary).
	if [[ ! -f $dir/primary.ready ]]; then
		pg_stop "$replica"
		pg_stop "$primary"
		rm -rf "$primary" "$replica" "$dir/replica.ready"
		port_open "$PG_PRIMARY_PORT" && die "port $PG_PRIMARY_PORT is taken by a server this script did not start"
		log "postgres: initdb primary"
		as_pg "$PG_BIN/initdb" -D "$primary" -A trust -U postgres --no-sync -E UTF8 --locale=C.UTF-8 \
			>"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; die "initdb failed"; }
		cat >>"$primary/postgresql.conf" <<-EOF
			# scaleout test settings
			listen_addresses = '$HOST'
			port = $PG_PRIMARY_PORT
			unix_socket_directories = '$dir/run'
			wal_level = replica
			max_wal_senders = 10
			hot_standby = on
			fsync = off
			synchronous_commit = off
			full_page_writes = off
		EOF
		touch "$dir/primary.ready"
	fi
	pg_start "$primary" "$dir/primary.log"

	if [[ ! -f $dir/replica.ready ]]; then
		pg_stop "$replica"
		rm -rf "$replica"
		port_open "$PG_REPLICA_PORT" && die "port $PG_REPLICA_PORT is taken by a server this script did not start"
		log "postgres: pg_basebackup standby"
		as_pg "$PG_BIN/pg_basebackup" -h "$HOST" -p "$PG_PRIMARY_PORT" -U postgres -D "$replica" \
			-R -X stream -c fast --no-sync >"$dir/basebackup.log" 2>&1 ||
			{ cat "$dir/basebackup.log" >&2; die "pg_basebackup failed"; }
		printf "port = %s\n" "$PG_REPLICA_PORT" >>"$replica/postgresql.conf"
		touch "$dir/replica.ready"
	fi
	pg_start "$replica" "$dir/replica.log"
	log "postgres: waiting for streaming replication"
	wait_until 60 "PostgreSQL standby to stream from the primary" pg_ok
	log "postgres: ok"
}

down_pg() {
	local dir=$ROOT/pg
	[[ -d $dir ]] || return 0
	find_pg_bin || true
	log "postgres: stopping ours"
	pg_stop "$dir/replica"
	pg_stop "$dir/primary"
	rm -rf "$dir"
}

# ---------------------------------------------------------------- MariaDB

# Each server reads only its own option file (--defaults-file), never /etc/mysql/my.cnf,
# so the system's server (if any, usually on 3306) and its settings stay out of the way.

# mysql_q PORT SQL: run SQL as root over TCP and print tab-separated rows without
# headers. --no-defaults: a ~/.my.cnf or /etc/mysql client section must not add a
# password, a socket or another user.
mysql_q() {
	[[ -n $MYSQL_CLIENT ]] || find_mysql_bin || return 1
	timeout 5 "$MYSQL_CLIENT" --no-defaults --protocol=TCP -h "$HOST" -P "$1" -u root \
		--connect-timeout=2 -N -B -e "$2" 2>/dev/null
}

# mysql_replica_field NAME: one field of SHOW SLAVE STATUS on the replica (vertical
# output, with the names that -N would drop).
mysql_replica_field() {
	[[ -n $MYSQL_CLIENT ]] || find_mysql_bin || return 1
	timeout 5 "$MYSQL_CLIENT" --no-defaults --protocol=TCP -h "$HOST" -P "$MYSQL_REPLICA_PORT" -u root \
		--connect-timeout=2 -E -e 'SHOW SLAVE STATUS' 2>/dev/null | sed -n "s/^ *$1: //p"
}

# mysql_serving: both answer, the primary is writable with database scaleout, and the
# replica is read-only and configured to replicate from our primary. Its threads may
# be stopped: the replica tests stop them for a moment, and `env` must not drop the
# variables meanwhile.
mysql_serving() {
	[[ $(mysql_q "$MYSQL_PRIMARY_PORT" "SELECT @@global.read_only, COUNT(*) FROM information_schema.schemata WHERE schema_name = 'scaleout'" || true) == $'0\t1' ]] &&
		[[ $(mysql_q "$MYSQL_REPLICA_PORT" 'SELECT @@global.read_only' || true) == 1 ]] &&
		[[ $(mysql_replica_field Master_Port || true) == "$MYSQL_PRIMARY_PORT" ]]
}

# mysql_ok: mysql_serving, with both replication threads running and database
# scaleout already on the replica (so it has caught up with at least that).
mysql_ok() {
	mysql_serving &&
		[[ $(mysql_replica_field Slave_IO_Running || true) == Yes ]] &&
		[[ $(mysql_replica_field Slave_SQL_Running || true) == Yes ]] &&
		[[ $(mysql_q "$MYSQL_REPLICA_PORT" "SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = 'scaleout'" || true) == 1 ]]
}

# mysql_stop NAME: stop our server NAME (primary or replica) by its recorded pid. SIGTERM
# is mariadbd's clean shutdown; the command line must name our option file, so a stale
# pid file can never kill another process (nor the system's server).
mysql_stop() { stop_pid "$ROOT/mariadb/run/$1.pid" "$ROOT/mariadb/$1.cnf"; }

# mysql_start NAME PORT: start our server NAME unless it runs, and wait until it answers.
mysql_start() {
	local name=$1 port=$2 dir=$ROOT/mariadb pid i
	if pid_alive "$dir/run/$name.pid" "$dir/$name.cnf"; then
		wait_until 60 "MariaDB $name on $port" mysql_q "$port" 'SELECT 1' >/dev/null
		return 0
	fi
	rm -f "$dir/run/$name.pid"
	port_open "$port" && die "port $port is taken by a server this script did not start"
	log "mariadb: starting $name on $HOST:$port"
	# setsid: its own session, so that it outlives this script and a Ctrl-C in the
	# terminal that ran it; 9>&-: it must not inherit (and so hold) our lock.
	setsid "$MYSQLD" --defaults-file="$dir/$name.cnf" </dev/null >>"$dir/$name.log" 2>&1 9>&- &
	pid=$!
	for ((i = 0; i < 600; i++)); do
		mysql_q "$port" 'SELECT 1' >/dev/null && return 0
		if ! running "$pid" && ! pid_alive "$dir/run/$name.pid" "$dir/$name.cnf"; then
			tail -n 30 "$dir/$name.log" >&2
			die "MariaDB $name exited during startup (log: $dir/$name.log)"
		fi
		sleep 0.1
	done
	tail -n 30 "$dir/$name.log" >&2
	die "timed out after 60s waiting for MariaDB $name on $port (log: $dir/$name.log)"
}

# mysql_init NAME PORT SERVER_ID EXTRA: a fresh data dir and option file for NAME.
mysql_init() {
	local name=$1 port=$2 id=$3 extra=$4 dir=$ROOT/mariadb user=()
	is_root && user=(--user=mysql)
	rm -rf "${dir:?}/$name" "$dir/$name.cnf" "$dir/$name.log"
	port_open "$port" && die "port $port is taken by a server this script did not start"
	log "mariadb: mariadb-install-db $name"
	# normal: root@localhost, @127.0.0.1 and @::1 with no password (socket auth would
	# need the OS user root); --no-defaults: as for the servers.
	"$MYSQL_INSTALL_DB" --no-defaults --datadir="$dir/$name" "${user[@]}" \
		--auth-root-authentication-method=normal --skip-test-db --skip-name-resolve \
		>"$dir/$name-install.log" 2>&1 </dev/null 9>&- ||
		{ tail -n 30 "$dir/$name-install.log" >&2; die "mariadb-install-db $name failed"; }
	{
		echo "[mysqld]"
		# mariadbd refuses to run as root; started as root it switches to this user.
		is_root && echo "user = mysql"
		cat <<-CNF
			datadir = $dir/$name
			port = $port
			bind-address = $HOST
			socket = $dir/run/$name.sock
			pid-file = $dir/run/$name.pid
			skip-name-resolve
			server-id = $id
			# Test settings: speed over durability, as for PostgreSQL (fsync off).
			innodb_flush_log_at_trx_commit = 2
			sync_binlog = 0
			innodb_doublewrite = 0
			innodb_buffer_pool_size = 64M
			performance_schema = OFF
			# Containers often cap the kernel's AIO contexts, which the system server
			# may already be using.
			innodb_use_native_aio = 0
		CNF
		printf '%s\n' "$extra"
	} >"$dir/$name.cnf"
}

up_mariadb() {
	local dir=$ROOT/mariadb
	find_mysql_bin || die "MariaDB programs not found"
	if mysql_ok; then
		log "mariadb: primary $MYSQL_PRIMARY_PORT and replica $MYSQL_REPLICA_PORT already replicating"
		return 0
	fi
	if is_root && ! id -u mysql >/dev/null 2>&1; then
		log "mariadb: creating the mysql OS user"
		useradd -r -U -M -d /nonexistent -s /usr/sbin/nologin mysql
	fi
	mkdir -p "$dir/run"
	if is_root; then
		chown mysql: "$dir" "$dir/run"
		runuser -u mysql -- test -x "$dir/run" ||
			die "the mysql user cannot reach $dir; set SCALEOUT_SERVICES_DIR to a path it can traverse"
	fi

	# A data dir without our marker is half-made; build it again, and with it the
	# replica, which replays the primary's binary log from its very start.
	if [[ ! -f $dir/primary.ready ]]; then
		mysql_stop replica
		mysql_stop primary
		rm -rf "$dir/replica" "$dir/replica.ready"
		mysql_init primary "$MYSQL_PRIMARY_PORT" 1 "log-bin = mysql-bin"
		touch "$dir/primary.ready"
	fi
	mysql_start primary "$MYSQL_PRIMARY_PORT"
	mysql_q "$MYSQL_PRIMARY_PORT" 'CREATE DATABASE IF NOT EXISTS scaleout' >/dev/null ||
		die "could not create database scaleout on the MariaDB primary"

	if [[ ! -f $dir/replica.ready ]]; then
		mysql_stop replica
		# relay-log: named after the host by default, which would break replication
		# if the host name changed.
		mysql_init replica "$MYSQL_REPLICA_PORT" 2 "read_only = 1
relay-log = replica-relay-bin"
		mysql_start replica "$MYSQL_REPLICA_PORT"
		# slave_pos: the replica's GTID position is empty, so it starts at the
		# beginning of the primary's binary log (which install-db did not write to).
		mysql_q "$MYSQL_REPLICA_PORT" "CHANGE MASTER TO MASTER_HOST='$HOST', MASTER_PORT=$MYSQL_PRIMARY_PORT, MASTER_USER='root', MASTER_PASSWORD='', MASTER_CONNECT_RETRY=1, MASTER_USE_GTID=slave_pos" >/dev/null ||
			die "CHANGE MASTER TO on the MariaDB replica failed"
		touch "$dir/replica.ready"
	else
		mysql_start replica "$MYSQL_REPLICA_PORT"
	fi
	# Also repairs a replica whose threads a test stopped and never restarted; a
	# no-op (a note) when they run.
	mysql_q "$MYSQL_REPLICA_PORT" 'START SLAVE' >/dev/null || die "START SLAVE on the MariaDB replica failed"
	log "mariadb: waiting for replication"
	local i
	for ((i = 0; i < 600; i++)); do
		mysql_ok && break
		sleep 0.1
	done
	if ! mysql_ok; then
		timeout 5 "$MYSQL_CLIENT" --no-defaults --protocol=TCP -h "$HOST" -P "$MYSQL_REPLICA_PORT" -u root \
			-E -e 'SHOW SLAVE STATUS' >&2 || true
		tail -n 20 "$dir/replica.log" >&2
		die "timed out after 60s waiting for the MariaDB replica to replicate (log: $dir/replica.log)"
	fi
	log "mariadb: ok"
}

down_mariadb() {
	local dir=$ROOT/mariadb
	[[ -d $dir ]] || return 0
	log "mariadb: stopping ours"
	mysql_stop replica
	mysql_stop primary
	rm -rf "$dir"
}

# ---------------------------------------------------------------- Chromium

# up_chromium: nothing to start (each test runs its own headless browser); check that the
# installed binary runs at all, so a broken install shows here rather than in every test.
up_chromium() {
	local bin ver
	bin=$(chromium_bin) || die "chromium not found in \$PATH"
	ver=$(timeout 30 "$bin" --version 2>/dev/null </dev/null) || die "$bin --version failed"
	log "chromium: $ver ($bin)"
}

# ---------------------------------------------------------------- commands

# print_env: after `up`, the UP_* variables say what up verified; otherwise probe.
UP_VERIFIED=""
UP_REDIS="" UP_CLUSTER="" UP_SENTINEL="" UP_MEMCACHED="" UP_PG="" UP_MARIADB="" UP_CHROMIUM=""
print_env() {
	local a cl=()
	if [[ -n $UP_VERIFIED ]]; then
		redis_addr() { [[ -n $UP_REDIS ]] && echo "$UP_REDIS"; }
		cluster_ok() { [[ -n $UP_CLUSTER ]]; }
		sentinel_ok() { [[ -n $UP_SENTINEL ]]; }
		memcached_addr() { [[ -n $UP_MEMCACHED ]] && echo "$UP_MEMCACHED"; }
		pg_ok() { [[ -n $UP_PG ]]; }
		mysql_serving() { [[ -n $UP_MARIADB ]]; }
		chromium_bin() { [[ -n $UP_CHROMIUM ]] && echo "$UP_CHROMIUM"; }
	fi
	if a=$(redis_addr); then echo "export SCALEOUT_REDIS_ADDR=$a"; fi
	if cluster_ok; then
		for a in "${CLUSTER_PORTS[@]}"; do cl+=("$HOST:$a"); done
		echo "export SCALEOUT_REDIS_CLUSTER_ADDRS=$(IFS=,; echo "${cl[*]}")"
	fi
	if sentinel_ok; then
		cl=()
		for a in "${SENTINEL_PORTS[@]}"; do cl+=("$HOST:$a"); done
		echo "export SCALEOUT_REDIS_SENTINEL_ADDRS=$(IFS=,; echo "${cl[*]}")"
		echo "export SCALEOUT_REDIS_SENTINEL_MASTER=$SENTINEL_MASTER"
	fi
	if a=$(memcached_addr); then echo "export SCALEOUT_MEMCACHED_ADDR=$a"; fi
	if find_pg_bin && pg_ok; then
		echo "export SCALEOUT_PG_PRIMARY_DSN=postgres://postgres@$HOST:$PG_PRIMARY_PORT/postgres?sslmode=disable"
		echo "export SCALEOUT_PG_REPLICA_DSN=postgres://postgres@$HOST:$PG_REPLICA_PORT/postgres?sslmode=disable"
	fi
	if find_mysql_bin && mysql_serving; then
		echo "export SCALEOUT_MYSQL_PRIMARY_DSN='root@tcp($HOST:$MYSQL_PRIMARY_PORT)/scaleout?parseTime=true'"
		echo "export SCALEOUT_MYSQL_REPLICA_DSN='root@tcp($HOST:$MYSQL_REPLICA_PORT)/scaleout?parseTime=true'"
	fi
	if a=$(chromium_bin); then echo "export SCALEOUT_CHROMIUM=$a"; fi
}

cmd_up() {
	mkdir -p "$ROOT"
	chmod 755 "$ROOT"
	# One `up` or `down` at a time (parallel `make test` runs, say).
	if command -v flock >/dev/null; then
		exec 9>"$ROOT/.lock"
		flock -w 300 9 || die "another services.sh holds $ROOT/.lock"
	fi
	ensure_programs
	if wants redis; then up_redis && UP_REDIS=$(redis_addr); fi
	if wants cluster; then up_cluster && UP_CLUSTER=1; fi
	if wants sentinel; then up_sentinel && UP_SENTINEL=1; fi
	if wants memcached; then up_memcached && UP_MEMCACHED=$(memcached_addr); fi
	if wants pg; then up_pg && UP_PG=1; fi
	if wants mariadb; then up_mariadb && UP_MARIADB=1; fi
	if wants chromium; then up_chromium && UP_CHROMIUM=$(chromium_bin); fi
	UP_VERIFIED=1
	print_env >"$ROOT/env.tmp"
	mv "$ROOT/env.tmp" "$ROOT/env"
	cat "$ROOT/env"
}

cmd_down() {
	[[ -d $ROOT ]] || return 0
	if command -v flock >/dev/null; then
		exec 9>"$ROOT/.lock"
		flock -w 300 9 || die "another services.sh holds $ROOT/.lock"
	fi
	down_mariadb
	down_pg
	down_memcached
	down_sentinel
	down_cluster
	down_redis
	rm -f "$ROOT/env" "$ROOT/env.tmp" "$ROOT/apt.log"
	rmdir "$ROOT" 2>/dev/null || true # .lock stays while we hold it
	rm -f "$ROOT/.lock"
	rmdir "$ROOT" 2>/dev/null || true
}

status_line() { printf '%-14s %-5s %s\n' "$1" "$2" "$3"; }

cmd_status() {
	local a p n=0
	if redis_ping "$REDIS_REUSE_PORT"; then
		status_line redis up "$HOST:$REDIS_REUSE_PORT (reused)"
	elif redis_ping "$REDIS_PORT"; then
		status_line redis up "$HOST:$REDIS_PORT ($(pid_alive "$ROOT/redis/redis.pid" redis-server && echo "ours, pid $(cat "$ROOT/redis/redis.pid")" || echo "not started by us"))"
	else
		status_line redis down ""
	fi
	if cluster_ok; then
		status_line redis-cluster up "$HOST:${CLUSTER_PORTS[0]}-${CLUSTER_PORTS[5]}"
	else
		for p in "${CLUSTER_PORTS[@]}"; do redis_ping "$p" && n=$((n + 1)); done
		status_line redis-cluster down "$n of 6 nodes answer, cluster not ok"
	fi
	if sentinel_ok; then
		status_line redis-sentinel up "master $(sentinel_cli "${SENTINEL_PORTS[0]}" sentinel get-master-addr-by-name "$SENTINEL_MASTER" | paste -sd: -), sentinels ${SENTINEL_PORTS[*]}"
	else
		status_line redis-sentinel down "not all of: 3 sentinels agreeing, a master with a synced replica"
	fi
	if a=$(memcached_addr); then
		if [[ $a == *:$MEMCACHED_REUSE_PORT ]]; then
			status_line memcached up "$a (reused)"
		else
			status_line memcached up "$a ($(pid_alive "$ROOT/memcached/memcached.pid" memcached && echo "ours, pid $(cat "$ROOT/memcached/memcached.pid")" || echo "not started by us"))"
		fi
	else
		status_line memcached down ""
	fi
	if find_pg_bin && pg_ok; then
		status_line postgres up "primary $HOST:$PG_PRIMARY_PORT, standby $HOST:$PG_REPLICA_PORT streaming"
	else
		status_line postgres down ""
	fi
	if find_mysql_bin && mysql_ok; then
		status_line mariadb up "primary $HOST:$MYSQL_PRIMARY_PORT, replica $HOST:$MYSQL_REPLICA_PORT replicating"
	elif find_mysql_bin && mysql_serving; then
		status_line mariadb up "primary $HOST:$MYSQL_PRIMARY_PORT, replica $HOST:$MYSQL_REPLICA_PORT (replication threads stopped; up restarts them)"
	else
		status_line mariadb down ""
	fi
	if a=$(chromium_bin); then
		status_line chromium ok "$a (installed; each browser test starts its own)"
	else
		status_line chromium -- "not installed (Debian package chromium)"
	fi
}

case "${1:-}" in
up) cmd_up ;;
down) cmd_down ;;
env) print_env ;;
status) cmd_status ;;
*)
	echo "usage: $0 up|down|env|status" >&2
	exit 2
	;;
esac
