"""Seeds, devices and logging."""
