"""cardio_signal: what only the plugins whose records are signals with events need (one recording under two ids, by
its beats: same_signal), a service of its own as cardio_imaging is for images. Import its modules by name:
`from cardio_signal.same_signal import Recording, same_recordings`."""
