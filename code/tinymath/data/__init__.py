"""Data: embedded offline datasets, cleaning, mixing, decontamination and packing."""
