"""ris_driver — RIS devices, wire protocol, serial/ZMQ transports and a device simulator (no GNU Radio).

Public names::

    open_ris(url)                    sim://NAME, serial:///dev/ttyUSB0, osris+serial://..., zmq://host:port
    BoardSpec, Pattern (alias RisConfig), Ack, RisInfo, Health, RisDevice
    quantize(coef, board) -> Pattern; coefficients(pattern, board) -> complex (N,)
    RisError, RisTimeout, RisNack, RisProtocolError, RisVerifyError
    sim.get_simulator(name)          the shared simulated board behind sim://NAME
                                     (.applied_pattern(), .applied_coefficients(), .faults)

Protocol: ``ris_driver/PROTOCOL.md``. CLI: ``isac-testbed ris ...`` or ``python -m ris_driver ...``.
"""
from .device import Ack, BoardSpec, Health, Pattern, RisConfig, RisDevice, RisInfo
from .errors import RisError, RisNack, RisProtocolError, RisTimeout, RisVerifyError
from .quantize import coefficients, quantize
from .url import open_ris

__all__ = ["open_ris", "BoardSpec", "Pattern", "RisConfig", "Ack", "RisInfo", "Health", "RisDevice", "quantize",
           "coefficients", "RisError", "RisTimeout", "RisNack", "RisProtocolError", "RisVerifyError"]
