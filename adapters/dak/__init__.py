"""dak: archive mail and queue directories."""
