"""Huinong (惠农): the open digital service hall for rural banks and credit cooperatives."""

__version__ = "0.1.0"
