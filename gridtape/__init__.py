"""gridtape: a pandapower-exact power-flow engine in which every change is history."""
__version__ = "0.1.0"
