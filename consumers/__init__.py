"""What reads the bus to do something for people: trigger, bridge, and the
consumers to come (archive, web, irc, notify).

Each consumer is a folder with its pure logic (filters, formatting, rules,
queries) apart from its I/O loop, as adapters keep parser and source apart.
All of them get messages from the one `Subscriber` (debpulse.emitters) and
never open a ZeroMQ socket themselves.
"""
