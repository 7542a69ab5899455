"""A faithful stand-in for the GoTo Meeting REST API, served on loopback."""
