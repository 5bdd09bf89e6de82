"""File formats in and out: images checked on import (``imports``), labels written out (``exports``),
a zip writer with flat memory (``zipstream``), PNG renditions of images browsers do not show
(``renditions``). No HTTP and no database here; the services store and read what these make."""
