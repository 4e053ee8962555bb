"""Results directories -> the textbook comparison table, figures, HTML and Markdown.

reports/ imports nothing else of virtlab: it reads results directories through their
documented file format (samples.csv and environment.json, docs/contracts.md) only.
The entry point for other code is `reports.build.make_report`.
"""
