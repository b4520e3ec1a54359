"""debpulse-desktop: the same rules as debpulse-notify, shown on the
desktop through org.freedesktop.Notifications, bursts collapsed."""
