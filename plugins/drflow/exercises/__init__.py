"""The exercise program without Airflow: walkthrough checks per plan step, and each type's result."""
