"""The application layer: what the HTTP API and the CLI both do, without Flask.

`reports.ReportService` (a spec → its report's wire form, through the report cache in `cache`),
`grading.GradingService` (a grade request → the body in the requested format) and `assignments`
(the instructor's files, loaded and validated at start-up). It sits between the entry points
(service/api, service/cli.py) and the schemas; docs/architecture.md draws the layers.
"""
