"""debpulse-notify: per-person and per-team rules, and notifications by
mail, IRC (through debpulse-irc) and, with debpulse-desktop, on the desktop."""
