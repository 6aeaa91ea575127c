"""The retrainer: drift + quality monitors, triggers, challenger training, gates, promotion."""
