"""virtlab: containers and VMs compared on one machine -- the container runtime (oci, image, engine, network)."""
