"""`storyhub demo`: a demo project loaded through the real pipeline, for newcomers to try."""
