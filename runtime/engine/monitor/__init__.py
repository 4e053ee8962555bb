"""The native helpers: vl-monitor (one per container, like conmon) and vl-init (`--init`)."""
