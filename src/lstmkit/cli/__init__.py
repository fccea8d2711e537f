"""The command line: argument parsing and printing only; every decision lives in the library."""
