"""Configuration sources: a directory of config files or an HTTP endpoint returning the running config."""
