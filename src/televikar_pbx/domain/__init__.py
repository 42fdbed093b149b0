"""The pure core: no asyncio, no I/O, no clock. Time is always an argument."""
