"""FastAGI: the agents' feature codes, dialled from their phones (see ``server``)."""

from televikar_pbx.agi.server import (
    FEATURE_PROMPTS,
    AgiProtocolError,
    AgiReply,
    AgiRequest,
    FeatureServer,
    OnFeature,
)

__all__ = [
    "FEATURE_PROMPTS",
    "AgiProtocolError",
    "AgiReply",
    "AgiRequest",
    "FeatureServer",
    "OnFeature",
]
