"""The networks of CRCT: the facenet backbone and the BT, FV and FLL sub-networks."""
