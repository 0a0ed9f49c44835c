"""Línea Aquí: the FastAGI IVR engine for Querétaro's citizen line."""

__version__ = "0.1.0"
