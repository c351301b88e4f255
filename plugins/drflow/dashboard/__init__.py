"""The DR dashboard: an Airflow plugin page showing every component of every spec, served by the api-server."""
