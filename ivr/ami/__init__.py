"""The Asterisk Manager Interface side: queue outcomes and live queue state."""
