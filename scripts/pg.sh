#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# pg.sh: a throw-away PostgreSQL 15 server for the store tests, so that `make check` needs
# no cluster installed or running beforehand.
#
#   pg.sh start DIR   initdb into DIR/data, start a server whose only socket is the Unix
#                     socket in DIR (no TCP), create the database "hark", and print its
#                     conninfo line: host=DIR dbname=hark user=postgres
#   pg.sh stop DIR    stop that server and remove DIR
#
# PostgreSQL refuses to run as root, so as root the server runs as the "postgres" user
# (made by the postgresql package) and DIR belongs to it; as anyone else it runs as the
# caller. DIR must not exist, be empty, or be a leftover of an earlier `pg.sh start`
# (recognised by its marker file), which is stopped and wiped first. Every wait is bounded.
set -eu

bindir=/usr/lib/postgresql/15/bin
marker=hark-pg.marker
wait_seconds=60

die() {
  echo "pg.sh: $*" >&2
  exit 1
}

usage() {
  die "usage: pg.sh start DIR | pg.sh stop DIR"
}

# Run a command as the server's owner.
as_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

# Stop whatever server runs in $dir (a leftover of a killed run may still be up), quickly.
stop_server() {
  [ -f "$dir/data/postmaster.pid" ] || return 0
  as_owner "$bindir/pg_ctl" stop -D "$dir/data" -m fast -w -t "$wait_seconds" >/dev/null 2>&1 ||
    as_owner "$bindir/pg_ctl" stop -D "$dir/data" -m immediate -w -t "$wait_seconds" \
      >/dev/null 2>&1 || true
}

# Make $dir an empty directory the server's owner may use; refuse to wipe what is not ours.
prepare_dir() {
  if [ -f "$dir/$marker" ]; then
    stop_server
    rm -rf "$dir"
  elif [ -d "$dir" ] && [ -n "$(ls -A "$dir")" ]; then
    die "$dir is not empty and was not made by pg.sh: refusing to use it"
  fi
  mkdir -p "$dir"
  : >"$dir/$marker"
  if [ "$(id -u)" -eq 0 ]; then
    id postgres >/dev/null 2>&1 || die "no 'postgres' user: install the postgresql package"
    chown postgres: "$dir" "$dir/$marker"
    # The server must reach DIR through every parent (mktemp makes private ones).
    runuser -u postgres -- test -x "$dir" ||
      die "the postgres user cannot enter $dir: use a directory under a world-searchable one"
  fi
  chmod 0700 "$dir"
}

start() {
  [ -x "$bindir/initdb" ] || die "$bindir/initdb not found: install the postgresql package"
  prepare_dir
  if ! as_owner timeout "$wait_seconds" "$bindir/initdb" -D "$dir/data" -U postgres \
    --auth=trust -E UTF8 --locale=C --no-sync >"$dir/initdb.log" 2>&1; then
    cat "$dir/initdb.log" >&2
    die "initdb failed"
  fi
  # Durability is pointless for a server that is thrown away: trade it for speed.
  if ! as_owner "$bindir/pg_ctl" start -D "$dir/data" -l "$dir/server.log" -w \
    -t "$wait_seconds" -o "-c listen_addresses='' -k $dir -c fsync=off \
      -c synchronous_commit=off -c full_page_writes=off" >/dev/null; then
    cat "$dir/server.log" >&2
    die "the server did not start within ${wait_seconds}s"
  fi
  if ! as_owner timeout "$wait_seconds" "$bindir/createdb" -h "$dir" -U postgres hark; then
    stop_server
    die "cannot create the database 'hark'"
  fi
  echo "host=$dir dbname=hark user=postgres"
}

stop() {
  [ -d "$dir" ] || return 0
  [ -f "$dir/$marker" ] || die "$dir was not made by pg.sh: refusing to remove it"
  stop_server
  rm -rf "$dir"
}

[ $# -eq 2 ] || usage
case $2 in
  /*) dir=$2 ;;
  *) dir=$(pwd)/$2 ;;
esac
# DIR goes unquoted into the server's options and the conninfo line: keep it plain.
case $dir in
  *[!A-Za-z0-9._/-]*) die "$dir: only letters, digits and . _ / - are allowed in DIR" ;;
esac
# A Unix socket path is at most 107 bytes: DIR/.s.PGSQL.5432 has to fit.
[ ${#dir} -le 90 ] || die "$dir is too long for a Unix socket directory (at most 90 bytes)"
case $1 in
  start) start ;;
  stop) stop ;;
  *) usage ;;
esac
