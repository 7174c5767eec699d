#!/bin/sh
# What the official postgres image's entrypoint does for a compose file like Herd's: as root,
# it hands the data directory to the postgres user and runs itself again as that user; a first
# start makes the cluster (POSTGRES_USER, default postgres, with POSTGRES_PASSWORD, and the
# database POSTGRES_DB, default the user's name), reachable from other hosts by password.
set -eu
if [ "${1:-}" != postgres ]; then
    exec "$@"
fi
if [ "$(id -u)" = 0 ]; then
    mkdir -p "$PGDATA" /var/run/postgresql
    chown postgres:postgres "$PGDATA" /var/run/postgresql
    chmod 700 "$PGDATA"
    exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    : "${POSTGRES_PASSWORD:?the database is uninitialized and POSTGRES_PASSWORD is not set}"
    user=${POSTGRES_USER:-postgres}
    database=${POSTGRES_DB:-$user}
    password_file=$(mktemp)
    printf '%s\n' "$POSTGRES_PASSWORD" > "$password_file"
    # UTF-8, as the official image's cluster (its locale is en_US.utf8).
    initdb --username="$user" --pwfile="$password_file" --auth-local=trust \
        --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 -D "$PGDATA"
    rm -f "$password_file"
    echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
    echo "listen_addresses = '*'" >> "$PGDATA/postgresql.conf"
    # The database is made by a server that listens on its socket alone.
    pg_ctl -D "$PGDATA" -w -o "-c listen_addresses=''" start
    if [ "$database" != postgres ]; then
        psql -v ON_ERROR_STOP=1 --username="$user" --dbname=postgres \
            -c "CREATE DATABASE \"$database\""
    fi
    pg_ctl -D "$PGDATA" -m fast -w stop
fi
exec "$@"
