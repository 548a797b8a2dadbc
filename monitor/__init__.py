"""trustwatch: how patient communities see clinical trial sites and their partner groups."""
