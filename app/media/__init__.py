"""An image by id: its detail page, file and thumbnail, deletion, ZIPs, and moving files between stores."""
