"""mmscn: a scenario language and interpreter for how Linux lends address spaces."""
__version__ = "0.1.0"
