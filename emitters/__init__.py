"""The bus: events, envelopes, signing, outbox, ZeroMQ publish and subscribe.

Adapters hand `Event`s to an `Emitter`; only this package knows about
envelopes, sequence numbers, signatures and sockets.
"""
