# Airflow 3.3 with drflow and what its tasks run on the worker: the PostgreSQL 15 programs (pg_basebackup,
# pg_receivewal, pg_verifybackup, pg_ctl for restore drills, pg_rewind), zstd and pgBackRest. Debian bookworm, like
# the apache/airflow image. docker-compose.yaml builds it for every Airflow service (and its moto, webhook and seed
# services, which use drflow's `sandbox` extra).
FROM apache/airflow:3.3.2-python3.11
USER root
RUN apt-get update \
 && apt-get install -y --no-install-recommends postgresql-15 zstd pgbackrest \
 && rm -rf /var/lib/apt/lists/*
USER airflow
COPY --chown=airflow:root . /opt/drflow
# The directories the compose file mounts volumes on, owned by airflow so a new volume is writable for it.
RUN mkdir -p /opt/airflow/drflow /var/tmp/drflow-demo
# Bytecode compiled at build time: importing Airflow, the providers and boto3 from source costs seconds in every
# task and CLI call. pip compiles what it installs; the editable project sources and anything the base image
# left uncompiled are compiled here (compileall skips files already up to date). Airflow is named with the
# image's own version so that installing drflow never moves it.
RUN pip install --no-cache-dir --compile "apache-airflow==${AIRFLOW_VERSION}" -e "/opt/drflow[binary,sandbox]" \
 && python -m compileall -q -j 0 /opt/drflow/plugins /opt/drflow/dags \
    "$(python -c 'import airflow, pathlib; print(pathlib.Path(airflow.__file__).parents[1])')"
