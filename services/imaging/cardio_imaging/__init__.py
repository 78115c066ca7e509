"""cardio_imaging: what only the imaging plugins need (cine loops, the AHA 17-segment model, one image under two
ids), a service of its own so the kernel carries no OpenCV or JPEG codecs. Import its modules by name:
`from cardio_imaging import aha17`, `from cardio_imaging.cine import read_cine`."""
