"""Lab fixtures: placeholder until pvdrun.lab lands."""
