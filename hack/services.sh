#!/usr/bin/env bash
# Makes sure the backing services the datastore plugin tests use are up on loopback: PostgreSQL
# (5432), MariaDB (3306) and NATS with JetStream (4222). Each is started, the way this kind of
# machine starts it, when its port does not answer.
set -euo pipefail

up() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

ensure() {
  local name=$1 port=$2; shift 2
  up "$port" && return 0
  echo "services: starting $name" >&2
  "$@" >/dev/null 2>&1 || { echo "services: could not start $name ($*)" >&2; return 1; }
  for _ in $(seq 1 60); do
    up "$port" && return 0
    sleep 0.5
  done
  echo "services: $name does not answer on 127.0.0.1:$port" >&2
  return 1
}

ensure PostgreSQL 5432 bash -c 'pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start'
ensure MariaDB 3306 start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
mkdir -p /var/lib/nats-server
ensure NATS 4222 start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- \
  -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log
