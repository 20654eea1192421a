"""What the chapters measure: strategies compared over seeds, shortcuts ranked against the truth,
supernets (collapse, ranking, forgetting), training tricks, hardware-aware search, the published table, costs."""
