"""virtlab's low-level OCI runtime: the runc-compatible ``virtlab-runtime`` and an in-process API."""
