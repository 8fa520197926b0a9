"""The async implementation; scripts/generate_sync.py generates rendio_backend/_sync."""
