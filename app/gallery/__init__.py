"""The gallery at /all/: keyset pages, search and filters, the selection, tile shapes."""
