"""Users and their accounts on each exchange."""
