"""Data: image files, preprocessing, and (in the catalog) named data sets."""
