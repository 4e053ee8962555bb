"""Files that run inside the guest (init and helpers); data, not Python."""
