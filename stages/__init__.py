"""DVC stage entry points: `python -m stages.<name>`. Each reads params, calls the library, writes outs."""
