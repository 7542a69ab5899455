"""Running as a service: the daemon, systemd notification, metrics and logging."""
