"""The one service layer: admin, CLI, API and tasks all write through these functions."""
