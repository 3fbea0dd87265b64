"""The boot check: the reference user data booted as root in a sandbox (`make boot-check`)."""
