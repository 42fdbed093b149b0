"""televikar-pbx: the telephony backend of a telephone answering service."""

__version__ = "0.1.0"
