"""AMI adapter (panoramisk): agent phone presence."""
