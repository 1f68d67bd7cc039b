"""Where builds live beyond one home: publishing to a Chroma server, and following it."""
