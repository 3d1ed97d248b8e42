"""Reading inputs: formats, encodings, columns, lines, cells into tags."""
