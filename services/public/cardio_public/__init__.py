"""cardio_public: the public data sets plugins download (fetch: `cardio data list|fetch`), the backbones they build
from them as releases (`cardio data build|place`), and the checked starting weights a network begins from (weights:
torchvision's published files, placed releases, a user's file). Only the plugins that use public data or pretrained
starts need it; they declare cardio-crt-public, and the kernel finds it through the entry-point group
`cardio.services` (cli: its commands and the plugin hooks cardio_datasets and cardio_releases, hookspecs).
Nothing is imported here: `cardio --help` loads the cli module."""
