#!/bin/bash
# pg-replica: on first start, clone pg-primary as role replicator through the physical slot the primary's
# init script made (drflow_sandbox_replica, as the spec's replicas name it), then run the image's own
# entrypoint, which finds the data directory ready and starts a hot standby streaming from the primary.
set -euo pipefail

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  mkdir -p "$PGDATA"
  chown postgres:postgres "$PGDATA"
  chmod 700 "$PGDATA"
  until gosu postgres pg_isready --host pg-primary --quiet; do sleep 1; done
  PGPASSWORD="$DRFLOW_REPLICATION_PASSWORD" gosu postgres pg_basebackup --host pg-primary --username replicator \
    --pgdata "$PGDATA" --write-recovery-conf --wal-method stream --slot drflow_sandbox_replica --checkpoint fast
fi
exec docker-entrypoint.sh "$@"
