"""debpulse-irc: one bot, one connection per network, many channels, each
with its own filters, flood control that squashes bursts instead of
dropping them, and a checkpoint so that nothing is lost or repeated."""
