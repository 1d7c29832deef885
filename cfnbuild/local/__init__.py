"""Local: the embedded AWS emulator behind ``--local`` (moto in server mode on loopback).

Nothing here reaches AWS. Only the CLI starts the emulator; deploy code sees just an endpoint.
"""
