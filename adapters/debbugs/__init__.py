"""debbugs: bug mail and the SOAP interface."""
