"""Figure drawing shared by training (meters write their plots) and reports; depends only on numpy/matplotlib."""
