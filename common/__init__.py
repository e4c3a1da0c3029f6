"""Shared contract of physnn: configs, backends, layers, conversion, cost, data, training."""
