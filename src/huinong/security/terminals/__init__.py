"""Terminals: the registry of devices (smart terminals, POS, mobiles) that act for a service
point's agent or a produce buyer, their SM2 keys, the signed-request protocol (``signing``),
geofences, the institutions' platform keys that sign answers, and a client for terminals.

Modules: ``rules`` and ``geofence`` and ``signing`` are pure; ``models``, ``service``,
``nonces`` and ``platform_keys`` touch the database; ``client`` speaks HTTP with httpx.
"""
