"""Command-line tools and their libraries (launch, summary, plots); run as `python tools/<tool>.py`."""
