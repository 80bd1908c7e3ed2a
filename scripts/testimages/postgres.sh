#!/bin/sh
# Entrypoint of the PostgreSQL stand-in image: the official image's
# contract (POSTGRES_PASSWORD, POSTGRES_USER, POSTGRES_DB, PGDATA) on
# Debian's postgresql-15, for rivetr's tests.
set -e
if [ "$1" = postgres ]; then
	: "${PGDATA:=/var/lib/postgresql/data}" "${POSTGRES_USER:=postgres}"
	mkdir -p "$PGDATA" && chown -R postgres:postgres "$PGDATA" && chmod 700 "$PGDATA"
	if [ ! -s "$PGDATA/PG_VERSION" ]; then
		pw=$(mktemp) && printf '%s\n' "$POSTGRES_PASSWORD" >"$pw" && chown postgres "$pw"
		runuser -u postgres -- initdb -U "$POSTGRES_USER" --pwfile="$pw" --auth-local=trust --auth-host=scram-sha-256 -D "$PGDATA" >/dev/null
		rm -f "$pw"
		echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
		echo "listen_addresses = '*'" >>"$PGDATA/postgresql.conf"
		db=${POSTGRES_DB:-$POSTGRES_USER}
		if [ "$db" != postgres ]; then
			runuser -u postgres -- pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
			runuser -u postgres -- psql -U "$POSTGRES_USER" -d postgres -v ON_ERROR_STOP=1 -c "CREATE DATABASE \"$db\"" >/dev/null
			runuser -u postgres -- pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
		fi
	fi
	shift
	exec runuser -u postgres -- postgres -D "$PGDATA" "$@"
fi
exec "$@"
