# virtlab guest helpers, sourced by init and by the agent's timeout wrapper.
# Run argv inside the image's root (the mounted disk), in its working directory,
# with exactly the image's environment (vl_env comes from the host's config).
vl_in_root() { vl_env /bin/busybox nsenter -r/newroot -w"/newroot$VL_WORKDIR" -F -- "$@"; }
