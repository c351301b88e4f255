# Airflow 3.3 with drflow and the PostgreSQL 15 binaries its tasks run (pg_basebackup, pg_verifybackup,
# pg_ctl for restore drills). Debian bookworm, like the apache/airflow image.
FROM apache/airflow:3.3.2-python3.11
USER root
RUN apt-get update \
 && apt-get install -y --no-install-recommends postgresql-15 zstd \
 && rm -rf /var/lib/apt/lists/*
USER airflow
COPY --chown=airflow:root . /opt/drflow
# Bytecode compiled at build time: importing Airflow, the providers and boto3 from source costs seconds in every
# task and CLI call. pip compiles what it installs; the editable project sources and anything the base image
# left uncompiled are compiled here (compileall skips files already up to date).
RUN pip install --no-cache-dir --compile -e /opt/drflow \
 && python -m compileall -q -j 0 /opt/drflow/plugins /opt/drflow/dags \
    "$(python -c 'import airflow, pathlib; print(pathlib.Path(airflow.__file__).parents[1])')"
