"""Shipped network weights (data only): detection and DoA unfolded networks, unsupervised baseline.

Each weights file sits beside the command line and the log that produced it."""
