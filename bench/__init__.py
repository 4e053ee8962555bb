"""The harness: the same workloads on native, container and VM backends, and the root `virtlab` command."""
