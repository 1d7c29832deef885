"""Local: the embedded AWS emulator behind ``--local`` (moto in server mode on loopback).

:mod:`.emulator` runs moto in this process, for one command, with cfnbuild's corrections of its
defects; :mod:`.session` keeps it running in the background between commands (a local session),
as the process :mod:`.server` runs. Nothing here reaches AWS. Only the CLI starts the emulator;
deploy code sees just an endpoint.
"""
