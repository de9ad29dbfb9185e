"""Institutions (法人机构): the tenants, and each one's office tree."""
