"""Parties: customers (individuals, households, merchants, enterprises, governments,
collectives). The customers issue adds households, archives, geography and grids."""
