"""Streaming speech-to-text in front of NVIDIA Riva."""
