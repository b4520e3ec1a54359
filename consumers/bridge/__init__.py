"""debpulse-bridge: the bus into RabbitMQ, for fedora-messaging consumers."""
