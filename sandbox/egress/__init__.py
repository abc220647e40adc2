"""Egress by allowlist: a host-side HTTP proxy the network-less desktop reaches over exec."""
