"""The `make bench` harness: each figure is a small function returning its measurement."""
