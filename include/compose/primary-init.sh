#!/bin/bash
# pg-primary, first start only (postgres image: /docker-entrypoint-initdb.d): what the API Marketplace spec
# expects of its cluster. The replication role the replica streams as, pg_hba lines that let replication
# connections in (the image only admits them over the local socket), the spec's databases and the
# replica's physical slot. Passwords come from the environment (.env), never from this file.
set -euo pipefail

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
  -v replication_password="$DRFLOW_REPLICATION_PASSWORD" <<'SQL'
CREATE ROLE replicator WITH LOGIN REPLICATION PASSWORD :'replication_password';
CREATE DATABASE gateway;
CREATE DATABASE portal;
CREATE DATABASE catalog;
CREATE DATABASE users;
CREATE DATABASE analytics;
CREATE DATABASE billing;
SELECT pg_create_physical_replication_slot('drflow_sandbox_replica');
SQL

# The replica (role replicator) and drflow's pg_basebackup / pg_receivewal (the postgres superuser of
# connection drflow_pg_primary) connect for replication from the compose network.
cat >> "$PGDATA/pg_hba.conf" <<'HBA'
host replication replicator all scram-sha-256
host replication postgres all scram-sha-256
HBA
