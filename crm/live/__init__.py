"""Live updates over websockets (Channels): new orders and job progress."""
