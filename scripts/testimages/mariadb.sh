#!/bin/sh
# Entrypoint of the MariaDB stand-in image: the official mysql/mariadb
# images' contract (MYSQL_ROOT_PASSWORD, MYSQL_DATABASE, MYSQL_USER,
# MYSQL_PASSWORD, data in /var/lib/mysql) on Debian's mariadb-server.
set -e
if [ "$1" = mariadbd ] || [ "$1" = mysqld ]; then
	mkdir -p /var/lib/mysql /run/mysqld && chown -R mysql:mysql /var/lib/mysql /run/mysqld
	if [ ! -d /var/lib/mysql/mysql ]; then
		mariadb-install-db --user=mysql --datadir=/var/lib/mysql --skip-test-db >/dev/null
		mariadbd --user=mysql --skip-networking --socket=/run/mysqld/init.sock &
		pid=$!
		for i in $(seq 60); do mariadb-admin --socket=/run/mysqld/init.sock ping >/dev/null 2>&1 && break; sleep 0.5; done
		{
			echo "ALTER USER 'root'@'localhost' IDENTIFIED BY '$MYSQL_ROOT_PASSWORD';"
			echo "CREATE USER 'root'@'%' IDENTIFIED BY '$MYSQL_ROOT_PASSWORD'; GRANT ALL ON *.* TO 'root'@'%' WITH GRANT OPTION;"
			[ -n "$MYSQL_DATABASE" ] && echo "CREATE DATABASE IF NOT EXISTS \`$MYSQL_DATABASE\`;"
			if [ -n "$MYSQL_USER" ]; then
				echo "DROP USER IF EXISTS '$MYSQL_USER'@'localhost';"
				echo "CREATE USER '$MYSQL_USER'@'%' IDENTIFIED BY '$MYSQL_PASSWORD';"
				[ -n "$MYSQL_DATABASE" ] && echo "GRANT ALL ON \`$MYSQL_DATABASE\`.* TO '$MYSQL_USER'@'%';"
			fi
			echo "FLUSH PRIVILEGES;"
		} | mariadb --socket=/run/mysqld/init.sock -uroot
		kill "$pid" && wait "$pid" || true
	fi
	shift
	exec mariadbd --user=mysql --bind-address=0.0.0.0 "$@"
fi
exec "$@"
