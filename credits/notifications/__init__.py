"""Messages: the inbox, SMS deliveries and the channels that carry them (SPEC 2.7)."""
