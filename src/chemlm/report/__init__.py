"""The study report: one self-contained HTML page and a Markdown summary, built from the workflow's result files.

`results` locates and reads those files, `figures` draws the test-set and learning curves, `tables` renders
tables as HTML and Markdown, `sections` and `provenance` build one page section each, `page` writes the outputs.
"""
