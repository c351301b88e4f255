"""HTTP and TCP probes of validation suites."""
