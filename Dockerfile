# Airflow 3.3 with drflow and the PostgreSQL 15 binaries its tasks run (pg_basebackup, pg_verifybackup,
# pg_ctl for restore drills). Debian bookworm, like the apache/airflow image.
FROM apache/airflow:3.3.2-python3.11
USER root
RUN apt-get update \
 && apt-get install -y --no-install-recommends postgresql-15 zstd \
 && rm -rf /var/lib/apt/lists/*
USER airflow
COPY --chown=airflow:root . /opt/drflow
RUN pip install --no-cache-dir -e /opt/drflow
