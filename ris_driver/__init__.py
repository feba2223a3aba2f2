"""ris_driver — RIS devices, wire protocol, serial/ZMQ transports and a device simulator (no GNU Radio)."""
