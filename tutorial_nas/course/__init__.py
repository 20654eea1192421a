"""What the course is made of: figures, slides, notebook re-execution, widgets and drawings."""
