"""Training: tasks (networks, losses, steps), the distributed loop, and packing runs into bundles."""
