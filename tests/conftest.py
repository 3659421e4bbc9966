"""Test setup: two virtual CPU devices (set before jax is first imported)."""

from synthenv import host_devices

host_devices.configure(2)
