"""What the frameworks provide: their layers and their model constructors, as data."""
