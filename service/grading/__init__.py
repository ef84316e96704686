"""Grading: rubrics of checks over an analysis report, scores, and results for LMS autograders.

Pure Python over the report's JSON dict (no Flask, no torch calls): `grader.grade` evaluates a
rubric, `formats` writes the service's JSON, Gradescope's results.json or PrairieLearn's
results, `assignments` loads the instructor's assignment files.
"""
