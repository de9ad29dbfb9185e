"""Payments: deposit accounts and the teller and customer use cases that move money —
cash deposit and withdrawal, customer transfers with a fee, reversals. Later: assisted
banking at service points, bills, subsidies."""
