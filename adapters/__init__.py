"""One independent program per legacy service: dak, wannabuild, debbugs, scm.

Each adapter is a source (I/O loop), a parser (pure: bytes or rows in,
Events out) and its message types; it hands Events to an Emitter.
"""
