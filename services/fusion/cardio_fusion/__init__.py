"""`cardio fuse`: one CRT prediction from several modalities' runs on the same patients (fuse), and its report."""
