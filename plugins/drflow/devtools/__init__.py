"""Developer tooling, not run in production: the sandbox, the demo, the local Airflow launcher and its environment."""
