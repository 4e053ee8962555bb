"""The docker-compatible `virtlab` commands of the container runtime, one module per command family."""
