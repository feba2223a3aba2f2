"""calibration — bench calibration: pure estimators (estimate / apply / embed) and thin bench scripts."""
