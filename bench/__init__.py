"""Benchmarks on a generated county in the `bench` PostgreSQL database (see bench/README.md)."""
