"""Hashing media and files locally (SHA-256, MD5, PDQ, vPDQ) for hash banks; nothing is uploaded."""
