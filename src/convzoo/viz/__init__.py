"""Pictures of a network: its filters and its activation maps, as PNG grids."""
