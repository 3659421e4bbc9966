"""Protocols on top of the core: evaluating agents on proxies and real tasks."""
