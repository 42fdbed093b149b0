"""The operator's command line: customers, agents and bookings (see ``commands``)."""
