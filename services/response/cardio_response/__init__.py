"""cardio_response: the CRT outcome rules a plugin's cohort table is read by (He et al.'s volumetric response), a
service of its own because only the plugins whose outcome is that rule need it (ecg_transfer, spect_polar); the
kernel's table reader applies whatever rule a Schema declares. Import its module by name:
`from cardio_response.volumetric import VolumetricResponse`."""
