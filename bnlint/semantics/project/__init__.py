"""The project: which module lives in which file (read from text), and loading another
file's bindings when an analysed file uses them."""
