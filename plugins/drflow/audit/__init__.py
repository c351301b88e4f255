"""The recovery record: a plan run's audit trail read from Airflow's REST API, judged against the RTO."""
