"""Server-rendered pages, thin: read through selectors, write through services; one module per
page or group of pages (the URL routes name them)."""
