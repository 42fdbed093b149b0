"""The call path: ARI events in, desk decisions out, records written."""
