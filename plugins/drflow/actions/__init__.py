"""Actions a plan step takes on the world outside the datastores: traffic switching (DNS/HTTP) and reviewed commands."""
