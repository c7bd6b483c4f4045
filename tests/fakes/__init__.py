"""Local stand-ins for Google services that have no emulator."""
