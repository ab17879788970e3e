"""The REST API at /api/: clients and orders for scripts and other systems."""
