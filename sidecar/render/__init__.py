"""Message rendering: the Go plugin's texts (`classic.py`) and the escaping they rely on."""
