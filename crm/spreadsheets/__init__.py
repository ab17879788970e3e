"""Clients and orders as CSV files: the columns, import, export and uploads."""
